"""The servers' own time for a login: the password grant and AssumeRoleWithWebIdentity (the
role read from the token as a login reads it), each on a new connection as a login makes
them, timed inside one Python process so that no process start is counted. Prints one line
per run, in ms. Usage: ASTRAN_IDP_URL=… ASTRAN_STS_ENDPOINT=… python3 bench/servers.py RUNS,
or `--each`: one warm-up, then one run for each line read on stdin (so that a caller can time
the servers between its own runs, side by side)."""
import base64, http.client, json, os, sys, time, urllib.parse

idp = urllib.parse.urlsplit(os.environ["ASTRAN_IDP_URL"])
sts = urllib.parse.urlsplit(os.environ["ASTRAN_STS_ENDPOINT"])
each = sys.argv[1] == "--each"
n = 0 if each else int(sys.argv[1])


def post(u, path, fields):
    c = http.client.HTTPConnection(u.hostname, u.port)
    c.request("POST", path, urllib.parse.urlencode(fields), {"Content-Type": "application/x-www-form-urlencoded"})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body


def login():
    t0 = time.perf_counter()
    s, b = post(idp, idp.path, {"client_id": "root-client", "grant_type": "password",
                                "username": "demo@astran.io", "password": "PASSWORD123"})
    tok = json.loads(b)["access_token"]
    payload = tok.split(".")[1]
    role = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["https://aws.amazon.com/tags"]["principal_tags"]["role"][0]
    s2, _b = post(sts, "/", {"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", "RoleArn": role,
                            "RoleSessionName": "demo", "WebIdentityToken": tok, "DurationSeconds": "3600"})
    assert s == 200 and s2 == 200, (s, s2)
    return (time.perf_counter() - t0) * 1000


login()  # warm-up
if each:
    for _line in sys.stdin:
        print("srv %.2f" % login(), flush=True)
for _ in range(n):
    print("srv %.2f" % login())
