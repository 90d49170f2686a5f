"""moto in server mode that checks signatures, with Astran's root account on top.

Arguments are moto_server's. What differs from a stock moto_server:

- Every signed request is authenticated and authorized (moto's own IAM access control, on
  from the first request: INITIAL_NO_AUTH_ACTION_COUNT=0). A key moto does not know is
  InvalidClientTokenId (IAM) or InvalidAccessKeyId (S3); a wrong signature is
  SignatureDoesNotMatch; a deleted key is refused.
- AssumeRoleWithWebIdentity and AssumeRoleWithSAML are not signed, as at AWS (their caller has
  no credentials yet); stock moto with access control on fails them for want of an
  Authorization header.
- Astran's root role (`arn:<tenant>:iam::<account>:root`, the IdP's `role` claim for a root
  account) has every right, as the root account has at Astran. moto looks up policies of an
  IAM role by name and knows no such role.
- CreateAccessKey, ListAccessKeys, UpdateAccessKey and DeleteAccessKey without UserName act on
  the caller, as at AWS. Astran answers UserName "root" for the root role's temporary
  credentials (its tutorial); the user `root` is made on first use, with every right. Stock moto
  resolves the user from the key given in the call (or fails for a temporary key).

Faults, for the tests of what a failure leaves: the JSON file named by MOTO_ASTRAN_FAULTS
(re-read at every request) may hold
- `"fail": {"<Action>": {"status": 500, "code": "ServiceFailure", "times": N}}`: the action
  answers that error (the first N times, or always);
- `"new_key_delay_secs": S`: IAM's eventual consistency, a key refused (InvalidClientTokenId)
  for S seconds after it was made.
"""

import datetime
import json
import os
import sys

os.environ.setdefault("INITIAL_NO_AUTH_ACTION_COUNT", "0")

import moto.settings  # noqa: E402

moto.settings.INITIAL_NO_AUTH_ACTION_COUNT = float(os.environ["INITIAL_NO_AUTH_ACTION_COUNT"])

from moto.core.authorization import ActionAuthenticatorMixin  # noqa: E402
from moto.core.exceptions import InvalidClientTokenIdError, _RESTError  # noqa: E402
from moto.iam import access_control  # noqa: E402
from moto.iam.models import iam_backends  # noqa: E402
from moto.iam.responses import IamResponse  # noqa: E402
from moto.sts.models import sts_backends  # noqa: E402

ALLOW_ALL = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
UNSIGNED = {"AssumeRoleWithWebIdentity", "AssumeRoleWithSAML"}
CALLER_ACTIONS = {"CreateAccessKey", "ListAccessKeys", "UpdateAccessKey", "DeleteAccessKey"}


def is_astran_root(role_arn):
    return role_arn.startswith("arn:") and role_arn.endswith(":root") and "/" not in role_arn


real_authenticate = ActionAuthenticatorMixin._authenticate_and_authorize_action
failed_so_far = {}


def faults():
    path = os.environ.get("MOTO_ASTRAN_FAULTS")
    try:
        with open(path) as f:
            return json.load(f)
    except (TypeError, OSError, ValueError):
        return {}


def injected(action, f):
    spec = f.get("fail", {}).get(action)
    if not spec:
        return
    n = failed_so_far.get(action, 0)
    if "times" in spec and n >= spec["times"]:
        return
    failed_so_far[action] = n + 1
    error = type("Injected", (_RESTError,), {"code": spec.get("status", 500)})
    raise error(spec.get("code", "ServiceFailure"), spec.get("message", "injected by the test"))


def too_new(self, f):
    delay = f.get("new_key_delay_secs")
    auth = self.headers.get("Authorization", "")
    key_id = auth.partition("Credential=")[2].partition("/")[0]
    if not delay or not key_id.startswith("AKIA"):
        return
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    for user in iam_backends[self.current_account]["aws"].users.values():
        for key in user.access_keys:
            if key.access_key_id == key_id:
                created = key.create_date.replace(tzinfo=None)
                if (now - created).total_seconds() < delay:
                    raise InvalidClientTokenIdError()


def authenticate(self, iam_request_cls, resource="*"):
    action = self._get_action()
    if action in UNSIGNED:
        return
    f = faults()
    injected(action, f)
    too_new(self, f)
    return real_authenticate(self, iam_request_cls, resource)


ActionAuthenticatorMixin._authenticate_and_authorize_action = authenticate

real_role_policies = access_control.AssumedRoleAccessKey.collect_policies


def role_policies(self):
    if is_astran_root(self._owner_role_name):
        return [ALLOW_ALL]
    return real_role_policies(self)


access_control.AssumedRoleAccessKey.collect_policies = role_policies


def root_user(backend):
    try:
        backend.get_user("root")
    except Exception:
        backend.create_user(region_name="us-east-1", user_name="root", path="/", tags=[])
        backend.put_user_policy("root", "astran-root", ALLOW_ALL)
    return "root"


def caller_user(response):
    """The IAM user that signed the request, "root" for Astran's root role, or None."""
    key_id = response.get_access_key()
    backend = response.backend
    for partition in sts_backends[response.current_account]:
        for assumed in sts_backends[response.current_account][partition].assumed_roles:
            if assumed.access_key_id == key_id:
                return root_user(backend) if is_astran_root(assumed.role_arn) else None
    for user in backend.list_users("/", None, None):
        if any(k.access_key_id == key_id for k in user.access_keys):
            return user.name
    return None


real_get_param = IamResponse._get_param


def get_param(self, param_name, if_none=None):
    value = real_get_param(self, param_name, if_none)
    if param_name == "UserName" and not value and self._get_action() in CALLER_ACTIONS:
        return caller_user(self) or value
    return value


IamResponse._get_param = get_param

from moto.server import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
