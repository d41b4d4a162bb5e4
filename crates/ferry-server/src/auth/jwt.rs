//! Access tokens: HS256 JWTs carrying [`AccessClaims`].

use std::time::Duration;

use ferry_protocol::AccessClaims;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

use crate::error::Result;
use crate::users::User;

/// Why an access token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Expired,
    Invalid,
}

/// Signing and verification keys derived from the database's secret.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl JwtKeys {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // jsonwebtoken accepts tokens up to 60 s past `exp` by default; the
        // protocol promises expiry at `access_expires_at`, so no leeway.
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret), validation }
    }

    /// A token for `user` (of its organisation, in its session epoch)
    /// valid for `ttl` from `now_ms`; returns the token and its expiry in ms.
    pub fn issue(&self, user: &User, ttl: Duration, now_ms: i64) -> Result<(String, i64)> {
        let iat = now_ms.div_euclid(1000);
        let exp = iat.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2));
        let claims =
            AccessClaims { sub: user.name.clone(), org: user.org.clone(), exp, iat, epoch: user.session_epoch };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok((token, exp.saturating_mul(1000)))
    }

    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation).map(|data| data.claims).map_err(
            |e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::now_ms;

    #[test]
    fn issue_verify_expire() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef");
        let ann = User {
            name: "ann".into(),
            org: "org1".into(),
            password_hash: String::new(),
            created_at: 0,
            disabled_at: None,
            session_epoch: 7,
        };
        let (token, exp) = keys.issue(&ann, Duration::from_secs(60), now_ms()).unwrap();
        assert!(exp > now_ms());
        let claims = keys.verify(&token).unwrap();
        assert_eq!((claims.sub.as_str(), claims.org.as_str(), claims.epoch), ("ann", "org1", 7));

        // Expired 5 s ago: refused although jsonwebtoken's default leeway
        // would have accepted it.
        let (old, _) = keys.issue(&ann, Duration::from_secs(1), now_ms() - 6000).unwrap();
        assert_eq!(keys.verify(&old), Err(TokenError::Expired));

        let other = JwtKeys::new(b"another secret of thirty-two byt");
        assert_eq!(other.verify(&token), Err(TokenError::Invalid));
        assert_eq!(keys.verify("garbage"), Err(TokenError::Invalid));
    }
}
