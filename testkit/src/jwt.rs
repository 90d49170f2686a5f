//! Minimal JWS compact serialization: RS256 for access/ID tokens (like a
//! Keycloak realm's default RSA key) and HS512/HS256 for refresh tokens (like
//! Keycloak's realm HMAC key, which signs refresh tokens).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256, Sha512};

/// Test-only RSA-2048 key committed with the crate so start-up needs no key
/// generation. It signs tokens for a local test IdP and protects nothing.
pub const BUNDLED_TEST_KEY_PEM: &str = include_str!("../keys/test-idp-rsa2048.pem");

pub fn b64(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

pub struct Keys {
    rsa: SigningKey<Sha256>,
    public: RsaPublicKey,
    rsa_kid: String,
    hmac_secret: Vec<u8>,
    hmac_kid: String,
}

#[derive(Debug)]
pub enum DecodeError {
    Malformed,
    BadSignature,
}

impl Keys {
    /// Parses a PEM RSA private key (PKCS#8 "PRIVATE KEY" or PKCS#1 "RSA PRIVATE KEY").
    pub fn from_pem(pem: &str) -> Result<Keys, String> {
        let key = RsaPrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
            .map_err(|e| format!("cannot parse RSA private key PEM: {e}"))?;
        Ok(Self::from_private_key(key))
    }

    pub fn generate() -> Result<Keys, String> {
        let key = RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
            .map_err(|e| format!("RSA key generation failed: {e}"))?;
        Ok(Self::from_private_key(key))
    }

    fn from_private_key(key: RsaPrivateKey) -> Keys {
        let public = RsaPublicKey::from(&key);
        let rsa_kid = jwk_thumbprint(&public);
        let mut hmac_secret = vec![0u8; 64];
        rand::Rng::fill(&mut rand::thread_rng(), hmac_secret.as_mut_slice());
        let hmac_kid = crate::idp::new_uuid();
        Keys {
            rsa: SigningKey::<Sha256>::new(key),
            public,
            rsa_kid,
            hmac_secret,
            hmac_kid,
        }
    }

    #[cfg(test)]
    pub fn rsa_kid(&self) -> &str {
        &self.rsa_kid
    }

    /// The public key as a JWK, as served by Keycloak's `certs` endpoint
    /// (without `x5c`/`x5t`: this IdP has no certificate for its key).
    pub fn jwk(&self) -> Value {
        json!({
            "kid": self.rsa_kid,
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "n": b64(&self.public.n().to_bytes_be()),
            "e": b64(&self.public.e().to_bytes_be()),
        })
    }

    pub fn sign_rs256(&self, claims: &Map<String, Value>) -> String {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": self.rsa_kid});
        let input = signing_input(&header, claims);
        let sig = self.rsa.sign(input.as_bytes()).to_bytes();
        format!("{input}.{}", b64(&sig))
    }

    pub fn sign_hs512(&self, claims: &Map<String, Value>) -> String {
        let header = json!({"alg": "HS512", "typ": "JWT", "kid": self.hmac_kid});
        let input = signing_input(&header, claims);
        let mut mac = Hmac::<Sha512>::new_from_slice(&self.hmac_secret).expect("any key length");
        mac.update(input.as_bytes());
        format!("{input}.{}", b64(&mac.finalize().into_bytes()))
    }

    /// Verifies an HMAC-signed token (HS512 or HS256) made with this server's
    /// secret and returns its claims. Expiry is not checked here.
    pub fn decode_hmac(&self, token: &str) -> Result<Map<String, Value>, DecodeError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(DecodeError::Malformed);
        };
        let header: Value = decode_json(h)?;
        let sig = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| DecodeError::Malformed)?;
        let input = &token[..h.len() + 1 + p.len()];
        let ok = match header.get("alg").and_then(Value::as_str) {
            Some("HS512") => {
                let mut mac =
                    Hmac::<Sha512>::new_from_slice(&self.hmac_secret).expect("any key length");
                mac.update(input.as_bytes());
                mac.verify_slice(&sig).is_ok()
            }
            Some("HS256") => {
                let mut mac =
                    Hmac::<Sha256>::new_from_slice(&self.hmac_secret).expect("any key length");
                mac.update(input.as_bytes());
                mac.verify_slice(&sig).is_ok()
            }
            _ => false,
        };
        if !ok {
            return Err(DecodeError::BadSignature);
        }
        match decode_json(p)? {
            Value::Object(m) => Ok(m),
            _ => Err(DecodeError::Malformed),
        }
    }
}

fn signing_input(header: &Value, claims: &Map<String, Value>) -> String {
    let h = serde_json::to_vec(header).expect("serializable");
    let c = serde_json::to_vec(claims).expect("serializable");
    format!("{}.{}", b64(&h), b64(&c))
}

fn decode_json(part: &str) -> Result<Value, DecodeError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| DecodeError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| DecodeError::Malformed)
}

/// RFC 7638 JWK thumbprint, used as the key id.
fn jwk_thumbprint(key: &RsaPublicKey) -> String {
    let canonical = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        b64(&key.e().to_bytes_be()),
        b64(&key.n().to_bytes_be())
    );
    b64(&Sha256::digest(canonical.as_bytes()))
}

/// OIDC `at_hash`: left half of SHA-256 of the access token, base64url.
pub fn at_hash(access_token: &str) -> String {
    let d = Sha256::digest(access_token.as_bytes());
    b64(&d[..16])
}

/// Decodes a JWT payload without verifying it (test helper).
#[cfg(test)]
pub fn payload_unverified(token: &str) -> Map<String, Value> {
    let p = token.split('.').nth(1).expect("payload");
    match decode_json(p).expect("json") {
        Value::Object(m) => m,
        _ => panic!("payload is not an object"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::signature::Verifier;

    #[test]
    fn rs256_signature_verifies_with_published_key() {
        let keys = Keys::from_pem(BUNDLED_TEST_KEY_PEM).unwrap();
        let mut claims = Map::new();
        claims.insert("sub".into(), json!("x"));
        let token = keys.sign_rs256(&claims);
        let (input, sig) = token.rsplit_once('.').unwrap();
        let jwk = keys.jwk();
        let n = rsa::BigUint::from_bytes_be(
            &URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap(),
        );
        let e = rsa::BigUint::from_bytes_be(
            &URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap(),
        );
        let vk = VerifyingKey::<Sha256>::new(RsaPublicKey::new(n, e).unwrap());
        let sig = Signature::try_from(URL_SAFE_NO_PAD.decode(sig).unwrap().as_slice()).unwrap();
        vk.verify(input.as_bytes(), &sig).unwrap();
        let header: Value = decode_json(token.split('.').next().unwrap()).unwrap();
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["kid"], keys.rsa_kid());
    }

    #[test]
    fn hmac_tokens_round_trip_and_reject_tampering() {
        let keys = Keys::from_pem(BUNDLED_TEST_KEY_PEM).unwrap();
        let mut claims = Map::new();
        claims.insert("typ".into(), json!("Refresh"));
        let token = keys.sign_hs512(&claims);
        assert_eq!(keys.decode_hmac(&token).unwrap()["typ"], "Refresh");
        let mut forged = Map::new();
        forged.insert("typ".into(), json!("Offline"));
        let (h, _, s) = {
            let mut it = token.split('.');
            (it.next().unwrap(), it.next().unwrap(), it.next().unwrap())
        };
        let tampered = format!("{h}.{}.{s}", b64(&serde_json::to_vec(&forged).unwrap()));
        assert!(matches!(
            keys.decode_hmac(&tampered),
            Err(DecodeError::BadSignature)
        ));
        assert!(matches!(
            keys.decode_hmac("not-a-jwt"),
            Err(DecodeError::Malformed)
        ));
    }
}
