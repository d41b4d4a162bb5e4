//! Scrubbing what looks like a credential out of text bound for a
//! diagnostics archive. Ferry never logs tokens on purpose; this is the
//! second line, for a library (or a future log line) that would.

/// `text` with every bearer token, JWT and `token`/`password` value
/// replaced by [`REDACTED`].
pub fn redact(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0; // bytes of `text` already in `out`
    let mut i = 0;
    while i < b.len() {
        let hit = bearer(b, i).or_else(|| jwt(b, i)).or_else(|| secret_value(b, i));
        match hit {
            Some((start, end)) => {
                out.push_str(&text[copied..start]);
                out.push_str(REDACTED);
                copied = end;
                i = end;
            }
            None => i += 1,
        }
    }
    out.push_str(&text[copied..]);
    out
}

pub const REDACTED: &str = "[redacted]";

/// Shortest word after "Bearer" taken for a token.
const MIN_TOKEN_LEN: usize = 16;

/// Keys whose value is a secret (`"refresh_token":"…"`, `password=…`).
const SECRET_KEYS: [&[u8]; 5] = [b"access_token", b"refresh_token", b"token", b"password", b"secret"];

fn is_b64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

/// Characters of an `Authorization: Bearer` token (RFC 6750's b64token).
fn is_token_char(c: u8) -> bool {
    is_b64url(c) || matches!(c, b'.' | b'~' | b'+' | b'/' | b'=')
}

/// Starts a word here (not in the middle of an identifier).
fn word_start(b: &[u8], i: usize) -> bool {
    i == 0 || !is_b64url(b[i - 1])
}

fn run(b: &[u8], from: usize, ok: impl Fn(u8) -> bool) -> usize {
    b[from..].iter().position(|&c| !ok(c)).map_or(b.len(), |n| from + n)
}

/// `Bearer <token>` at `i`: the token's span.
fn bearer(b: &[u8], i: usize) -> Option<(usize, usize)> {
    const WORD: &[u8] = b"bearer";
    if !word_start(b, i) || !b.get(i..i + WORD.len())?.eq_ignore_ascii_case(WORD) {
        return None;
    }
    let start = run(b, i + WORD.len(), |c| c == b' ' || c == b'\t');
    let end = run(b, start, is_token_char);
    // Real tokens are long; "the bearer of bad news" is not one.
    (start > i + WORD.len() && end - start >= MIN_TOKEN_LEN).then_some((start, end))
}

/// A JWT at `i`: `eyJ…` and two more dot-separated base64url parts.
fn jwt(b: &[u8], i: usize) -> Option<(usize, usize)> {
    if !word_start(b, i) || !b[i..].starts_with(b"eyJ") {
        return None;
    }
    let head = run(b, i, is_b64url);
    if b.get(head) != Some(&b'.') {
        return None;
    }
    let payload = run(b, head + 1, is_b64url);
    if payload == head + 1 || b.get(payload) != Some(&b'.') {
        return None;
    }
    Some((i, run(b, payload + 1, is_b64url)))
}

/// `key":"value"`, `key: value`, `key=value` for a secret key at `i`:
/// the value's span.
fn secret_value(b: &[u8], i: usize) -> Option<(usize, usize)> {
    if !word_start(b, i) {
        return None;
    }
    let key = SECRET_KEYS.iter().find(|k| b.get(i..i + k.len()).is_some_and(|s| s.eq_ignore_ascii_case(k)))?;
    let mut j = i + key.len();
    if b.get(j).is_some_and(|&c| is_b64url(c)) {
        return None; // a longer word (`tokens`, `token_file`)
    }
    j = run(b, j, |c| c == b'"' || c == b'\'');
    j = run(b, j, |c| c == b' ');
    if !matches!(b.get(j), Some(b':' | b'=')) {
        return None;
    }
    j = run(b, j + 1, |c| c == b' ');
    let quote = b.get(j).filter(|&&c| c == b'"' || c == b'\'').copied();
    let start = j + usize::from(quote.is_some());
    let end = match quote {
        Some(q) => run(b, start, |c| c != q),
        None => run(b, start, |c| !(c.is_ascii_whitespace() || matches!(c, b',' | b'&' | b'}' | b';'))),
    };
    (end > start).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtZW50b3IifQ.c2lnbmF0dXJlLXBhcnQ";

    #[test]
    fn bearer_tokens_and_jwts_are_replaced() {
        assert_eq!(redact("authorization: Bearer abc.DEF-123_~+/=xyz"), "authorization: Bearer [redacted]");
        assert_eq!(redact("BEARER   x1x2x3x4x5x6x7x8x9 done"), "BEARER   [redacted] done");
        assert_eq!(redact(&format!("token {JWT} used")), "token [redacted] used");
        assert_eq!(redact(&format!("[{JWT}]")), "[[redacted]]");
        let out = redact(&format!("a\n{JWT}\nb ééé"));
        assert_eq!(out, "a\n[redacted]\nb ééé");
    }

    #[test]
    fn secret_keys_lose_their_values() {
        assert_eq!(
            redact(r#"{"refresh_token":"r-123","user":"mentor"}"#),
            r#"{"refresh_token":"[redacted]","user":"mentor"}"#
        );
        assert_eq!(redact("password=hunter2&user=x"), "password=[redacted]&user=x");
        assert_eq!(redact("access_token: abc def"), "access_token: [redacted] def");
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        for text in [
            "sync failed; backing off retry_in_ms=2000",
            "the bearer of bad news",
            "eyJ alone, eyJa.b without a third part",
            "token_file=/home/u/t tokens=3 bearerish",
            "conflict entity=activity record=a1",
            "",
        ] {
            assert_eq!(redact(text), text);
        }
    }
}
