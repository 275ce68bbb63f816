//! Request signing, byte for byte as CloudStack's `ApiServer.verifyRequest` checks it.
//!
//! 1. every parameter except `signature` (compared case-insensitively);
//! 2. sorted by name, case-sensitively (Java `String` order: upper-case before lower-case);
//! 3. `name=` + [`java_url_encode`]`(value)`, joined with `&` (names are not encoded);
//! 4. the whole string lower-cased;
//! 5. HMAC-SHA1 keyed with the secret; 6. standard Base64 with padding.
//!
//! The client signs with [`sign`]; the local cloud checks with [`verify`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;

use crate::params::{Params, java_url_encode};

/// The lower-cased canonical string that is signed (step 1-4).
pub fn string_to_sign<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut pairs: Vec<(&str, &str)> = pairs
        .into_iter()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("signature"))
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = String::new();
    for (name, value) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(&java_url_encode(value));
    }
    out.to_lowercase()
}

/// The Base64 signature of `params` (any `signature` already in them is ignored).
pub fn sign(params: &Params, secret: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    let tag = hmac::sign(&key, string_to_sign(params.iter()).as_bytes());
    STANDARD.encode(tag.as_ref())
}

/// Whether `signature` (Base64, as sent) is the signature of `pairs` under `secret`.
/// Compares in constant time.
pub fn verify<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    secret: &str,
    signature: &str,
) -> bool {
    let Ok(tag) = STANDARD.decode(signature.trim()) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    hmac::verify(&key, string_to_sign(pairs).as_bytes(), &tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        let mut params = Params::new();
        for (name, value) in pairs {
            params.set(*name, *value);
        }
        params
    }

    #[test]
    fn the_published_vector() {
        // ngine-io/cs's test vector (key `foo`, secret `bar`).
        let p = params(&[("command", "listZones"), ("apiKey", "foo")]);
        assert_eq!(string_to_sign(p.iter()), "apikey=foo&command=listzones");
        assert_eq!(sign(&p, "bar"), "vRCL4rttwUS7s3a3m53Py1iHaAw=");
    }

    #[test]
    fn the_peers_vector_with_response_json() {
        let p = params(&[
            ("apiKey", "KEY"),
            ("command", "listVirtualMachines"),
            ("response", "json"),
        ]);
        assert_eq!(sign(&p, "SECRET"), "L1pTr8OvDZCCRf6PoGbUJDFmFKc=");
    }

    #[test]
    fn special_characters_are_encoded_like_java() {
        // Expected values from `openssl dgst -sha1 -hmac bar -binary | base64` over the string.
        let p = params(&[
            ("command", "deployVirtualMachine"),
            ("displayname", "a b~c*d/e+f é"),
            ("apiKey", "foo"),
            ("response", "json"),
        ]);
        assert_eq!(
            string_to_sign(p.iter()),
            "apikey=foo&command=deployvirtualmachine&displayname=a%20b%7ec*d%2fe%2bf%20%c3%a9&response=json"
        );
        assert_eq!(sign(&p, "bar"), "J6h/YFR2OajRnLdCpBc6zry16rw=");
    }

    #[test]
    fn version_3_expires_is_signed_like_any_parameter() {
        let p = params(&[
            ("command", "listZones"),
            ("apiKey", "foo"),
            ("response", "json"),
            ("signatureVersion", "3"),
            ("expires", "2026-01-01T00:10:00+0000"),
        ]);
        assert_eq!(
            string_to_sign(p.iter()),
            "apikey=foo&command=listzones&expires=2026-01-01t00%3a10%3a00%2b0000&response=json&signatureversion=3"
        );
        assert_eq!(sign(&p, "bar"), "WSx635HY4GiW7/eUlyp37GLSCKk=");
    }

    #[test]
    fn names_sort_case_sensitively_before_lower_casing() {
        // "Zeta" < "apiKey" in Java order, so it comes first even though it is lower-cased after.
        let p = params(&[("apiKey", "foo"), ("command", "listZones"), ("Zeta", "1")]);
        assert_eq!(
            string_to_sign(p.iter()),
            "zeta=1&apikey=foo&command=listzones"
        );
        assert_eq!(sign(&p, "bar"), "RsDeaPibVoIfs12ULryM1EpFY0Q=");
    }

    #[test]
    fn verify_accepts_the_right_signature_only() {
        let mut p = params(&[("command", "listZones"), ("apiKey", "foo")]);
        let signature = sign(&p, "bar");
        p.set("signature", signature.clone());
        assert!(verify(p.iter(), "bar", &signature));
        assert!(!verify(p.iter(), "baz", &signature));
        assert!(!verify(p.iter(), "bar", "not base64!"));
        p.set("command", "listHosts");
        assert!(!verify(p.iter(), "bar", &signature));
    }
}
