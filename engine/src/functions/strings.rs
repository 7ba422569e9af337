//! ksqlDB's string, bytes and URL functions where DataFusion has none or means something
//! else: SPLIT, SPLIT_TO_MAP, REGEXP_EXTRACT(_ALL), REGEXP_SPLIT_TO_ARRAY, INSTR, INITCAP,
//! ENCODE, CHR, TO_BYTES, FROM_BYTES, INT/BIGINT/DOUBLE_FROM_BYTES, URL_EXTRACT_*,
//! URL_ENCODE_PARAM, URL_DECODE_PARAM.

use std::cell::RefCell;

use base64::Engine as _;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::ScalarUDF;
use regex::Regex;

use super::json::{string_list, string_list_scalar, string_map, string_map_scalar};
use super::row_udf::{Ret, any_of, integer, null_of, row_error, text, udf};

fn bytes(v: &ScalarValue) -> Option<&[u8]> {
    match v {
        ScalarValue::Binary(b) | ScalarValue::LargeBinary(b) | ScalarValue::BinaryView(b) => {
            b.as_deref()
        }
        _ => None,
    }
}

fn is_binary(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView
    )
}

fn split_type(_: &str, args: &[DataType]) -> Result<DataType> {
    let item = if args.first().is_some_and(is_binary) {
        DataType::Binary
    } else {
        DataType::Utf8
    };
    Ok(DataType::new_list(item, true))
}

pub fn all() -> Vec<ScalarUDF> {
    let string = || Ret::Fixed(DataType::Utf8);
    let strings = || Ret::Fixed(string_list());
    vec![
        udf("split", any_of(&[2]), Ret::From(split_type), |a, t| {
            if let (Some(s), Some(d)) = (bytes(&a[0]), bytes(&a[1])) {
                let parts: Vec<ScalarValue> = split_by(s, d)
                    .into_iter()
                    .map(|p| ScalarValue::Binary(Some(p.to_vec())))
                    .collect();
                return Ok(ScalarValue::List(ScalarValue::new_list_nullable(
                    &parts,
                    &DataType::Binary,
                )));
            }
            let (Some(s), Some(d)) = (text(&a[0]), text(&a[1])) else {
                return null_of(t);
            };
            let parts: Vec<Option<String>> = if d.is_empty() {
                s.chars().map(|c| Some(c.to_string())).collect()
            } else {
                s.split(d).map(|p| Some(p.to_string())).collect()
            };
            Ok(string_list_scalar(parts.into_iter()))
        }),
        udf(
            "split_to_map",
            any_of(&[3]),
            Ret::Fixed(string_map()),
            |a, t| {
                let (Some(s), Some(entry), Some(kv)) = (text(&a[0]), text(&a[1]), text(&a[2]))
                else {
                    return null_of(t);
                };
                if entry.is_empty() || kv.is_empty() {
                    return null_of(t);
                }
                let mut out: Vec<(String, Option<String>)> = Vec::new();
                for e in s.split(entry).filter(|e| !e.is_empty()) {
                    // As Java's String.split: the text between the first two delimiters.
                    let mut parts = e.split(kv);
                    if let (Some(k), Some(v)) = (parts.next(), parts.next()) {
                        match out.iter_mut().find(|(ok, _)| ok == k) {
                            Some(slot) => slot.1 = Some(v.to_string()),
                            None => out.push((k.to_string(), Some(v.to_string()))),
                        }
                    }
                }
                string_map_scalar(out)
            },
        ),
        udf("regexp_extract", any_of(&[2, 3]), string(), |a, t| {
            let (Some(p), Some(s)) = (text(&a[0]), text(&a[1])) else {
                return null_of(t);
            };
            let group = a.get(2).and_then(integer).unwrap_or(0) as usize;
            with_regex(p, |re| {
                Ok(ScalarValue::Utf8(
                    re.captures(s)
                        .and_then(|c| c.get(group))
                        .map(|m| m.as_str().to_string()),
                ))
            })
        }),
        udf("regexp_extract_all", any_of(&[2, 3]), strings(), |a, t| {
            let (Some(p), Some(s)) = (text(&a[0]), text(&a[1])) else {
                return null_of(t);
            };
            let group = a.get(2).and_then(integer).unwrap_or(0) as usize;
            with_regex(p, |re| {
                Ok(string_list_scalar(re.captures_iter(s).map(|c| {
                    Some(
                        c.get(group)
                            .map_or(String::new(), |m| m.as_str().to_string()),
                    )
                })))
            })
        }),
        udf("regexp_split_to_array", any_of(&[2]), strings(), |a, t| {
            let (Some(s), Some(p)) = (text(&a[0]), text(&a[1])) else {
                return null_of(t);
            };
            with_regex(p, |re| {
                Ok(string_list_scalar(re.split(s).map(|p| Some(p.to_string()))))
            })
        }),
        udf(
            "instr",
            any_of(&[2, 3, 4]),
            Ret::Fixed(DataType::Int32),
            |a, t| {
                let (Some(s), Some(sub)) = (text(&a[0]), text(&a[1])) else {
                    return null_of(t);
                };
                let position = a.get(2).and_then(integer).unwrap_or(1);
                let occurrence = a.get(3).and_then(integer).unwrap_or(1);
                Ok(ScalarValue::Int32(Some(instr(
                    s, sub, position, occurrence,
                ))))
            },
        ),
        udf("initcap", any_of(&[1]), string(), |a, t| {
            let Some(s) = text(&a[0]) else {
                return null_of(t);
            };
            Ok(ScalarValue::Utf8(Some(initcap(s))))
        }),
        udf("encode", any_of(&[3]), string(), |a, t| {
            let (Some(s), Some(from), Some(to)) = (text(&a[0]), text(&a[1]), text(&a[2])) else {
                return null_of(t);
            };
            let raw = decode_text(s, from)?;
            Ok(ScalarValue::Utf8(Some(encode_bytes(&raw, to)?)))
        }),
        udf(
            "to_bytes",
            any_of(&[2]),
            Ret::Fixed(DataType::Binary),
            |a, t| {
                let (Some(s), Some(enc)) = (text(&a[0]), text(&a[1])) else {
                    return null_of(t);
                };
                Ok(ScalarValue::Binary(Some(decode_text(s, enc)?)))
            },
        ),
        udf("from_bytes", any_of(&[2]), string(), |a, t| {
            let (Some(b), Some(enc)) = (bytes(&a[0]), text(&a[1])) else {
                return null_of(t);
            };
            Ok(ScalarValue::Utf8(Some(encode_bytes(b, enc)?)))
        }),
        udf(
            "int_from_bytes",
            any_of(&[1, 2]),
            Ret::Fixed(DataType::Int32),
            |a, t| match fixed_bytes::<4>(a)? {
                Some(b) => Ok(ScalarValue::Int32(Some(i32::from_be_bytes(b)))),
                None => null_of(t),
            },
        ),
        udf(
            "bigint_from_bytes",
            any_of(&[1, 2]),
            Ret::Fixed(DataType::Int64),
            |a, t| match fixed_bytes::<8>(a)? {
                Some(b) => Ok(ScalarValue::Int64(Some(i64::from_be_bytes(b)))),
                None => null_of(t),
            },
        ),
        udf(
            "double_from_bytes",
            any_of(&[1, 2]),
            Ret::Fixed(DataType::Float64),
            |a, t| match fixed_bytes::<8>(a)? {
                Some(b) => Ok(ScalarValue::Float64(Some(f64::from_be_bytes(b)))),
                None => null_of(t),
            },
        ),
        udf("chr", any_of(&[1]), string(), |a, t| {
            let c = match &a[0] {
                v if text(v).is_some() => chr_from_escape(text(v).unwrap_or_default()),
                v => integer(v)
                    .and_then(|n| u32::try_from(n).ok())
                    .and_then(char::from_u32),
            };
            match c {
                Some(c) => Ok(ScalarValue::Utf8(Some(c.to_string()))),
                None => null_of(t),
            }
        }),
        udf("url_extract_protocol", any_of(&[1]), string(), |a, t| {
            url_part(a, t, |u| Some(u.scheme.to_string()))
        }),
        udf("url_extract_host", any_of(&[1]), string(), |a, t| {
            url_part(a, t, |u| u.host.map(str::to_string))
        }),
        udf(
            "url_extract_port",
            any_of(&[1]),
            Ret::Fixed(DataType::Int32),
            |a, t| {
                let Some(s) = text(&a[0]) else {
                    return null_of(t);
                };
                let u = Url::parse(s);
                Ok(ScalarValue::Int32(Some(
                    u.port.and_then(|p| p.parse().ok()).unwrap_or(0),
                )))
            },
        ),
        udf("url_extract_path", any_of(&[1]), string(), |a, t| {
            url_part(a, t, |u| Some(percent_decode(u.path)))
        }),
        udf("url_extract_query", any_of(&[1]), string(), |a, t| {
            url_part(a, t, |u| u.query.map(percent_decode))
        }),
        udf("url_extract_fragment", any_of(&[1]), string(), |a, t| {
            url_part(a, t, |u| u.fragment.map(percent_decode))
        }),
        udf("url_extract_parameter", any_of(&[2]), string(), |a, t| {
            let (Some(s), Some(name)) = (text(&a[0]), text(&a[1])) else {
                return null_of(t);
            };
            let u = Url::parse(s);
            let value = u.query.and_then(|q| {
                q.split('&').find_map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (percent_decode(k) == name).then(|| percent_decode(v))
                })
            });
            Ok(ScalarValue::Utf8(value))
        }),
        udf("url_encode_param", any_of(&[1]), string(), |a, t| {
            let Some(s) = text(&a[0]) else {
                return null_of(t);
            };
            Ok(ScalarValue::Utf8(Some(form_encode(s))))
        }),
        udf("url_decode_param", any_of(&[1]), string(), |a, t| {
            let Some(s) = text(&a[0]) else {
                return null_of(t);
            };
            Ok(ScalarValue::Utf8(Some(percent_decode(
                &s.replace('+', " "),
            ))))
        }),
    ]
}

/// Splits bytes on a delimiter; an empty delimiter splits into single bytes.
fn split_by<'a>(s: &'a [u8], d: &[u8]) -> Vec<&'a [u8]> {
    if d.is_empty() {
        return s.chunks(1).collect();
    }
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + d.len() <= s.len() {
        if &s[i..i + d.len()] == d {
            out.push(&s[start..i]);
            i += d.len();
            start = i;
        } else {
            i += 1;
        }
    }
    out.push(&s[start..]);
    out
}

thread_local! {
    static LAST_REGEX: RefCell<Option<(String, Regex)>> = const { RefCell::new(None) };
}

/// Runs `f` with `pattern` compiled, compiling once per change of pattern.
fn with_regex(pattern: &str, f: impl FnOnce(&Regex) -> Result<ScalarValue>) -> Result<ScalarValue> {
    LAST_REGEX.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.as_ref().is_none_or(|(p, _)| p != pattern) {
            let re = Regex::new(pattern).map_err(|e| row_error(format!("invalid regex: {e}")))?;
            *cached = Some((pattern.to_string(), re));
        }
        f(&cached.as_ref().expect("just set").1)
    })
}

/// ksqlDB's INSTR: 1-based position of the `occurrence`-th `sub` searching from `position`
/// (backwards from the end when negative), 0 when absent.
fn instr(s: &str, sub: &str, position: i64, occurrence: i64) -> i32 {
    let chars: Vec<char> = s.chars().collect();
    let needle: Vec<char> = sub.chars().collect();
    let n = chars.len() as i64;
    let matches_at = |i: i64| {
        i >= 0
            && i + needle.len() as i64 <= n
            && chars[i as usize..i as usize + needle.len()] == needle[..]
    };
    let mut found = 0;
    if position > 0 {
        let mut i = position - 1;
        while i < n {
            if matches_at(i) {
                found += 1;
                if found == occurrence {
                    return (i + 1) as i32;
                }
            }
            i += 1;
        }
    } else if position < 0 {
        let mut i = n + position;
        while i >= 0 {
            if matches_at(i) {
                found += 1;
                if found == occurrence {
                    return (i + 1) as i32;
                }
            }
            i -= 1;
        }
    }
    0
}

/// Upper-cases the first letter of each whitespace-separated word, lower-cases the rest.
fn initcap(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if c.is_whitespace() {
            start = true;
            out.push(c);
        } else if start {
            out.extend(c.to_uppercase());
            start = false;
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Text in an encoding (hex, utf8, ascii, base64) as bytes.
fn decode_text(s: &str, encoding: &str) -> Result<Vec<u8>> {
    match encoding.to_lowercase().as_str() {
        "hex" => {
            let digits = s
                .strip_prefix("0x")
                .or_else(|| s.strip_prefix("0X"))
                .unwrap_or(s);
            // Checked first: slicing pairs of bytes below needs single-byte characters.
            if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(row_error(format!("invalid hex: {s}")));
            }
            let padded = if digits.len() % 2 == 1 {
                format!("0{digits}")
            } else {
                digits.to_string()
            };
            (0..padded.len())
                .step_by(2)
                .map(|i| {
                    u8::from_str_radix(&padded[i..i + 2], 16)
                        .map_err(|_| row_error(format!("invalid hex: {s}")))
                })
                .collect()
        }
        "utf8" => Ok(s.as_bytes().to_vec()),
        // Java writes '?' for each character ASCII cannot hold.
        "ascii" => Ok(s
            .chars()
            .map(|c| if c.is_ascii() { c as u8 } else { b'?' })
            .collect()),
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|e| row_error(format!("invalid base64: {e}"))),
        other => Err(row_error(format!("Unknown encoding: {other}"))),
    }
}

/// Bytes as text in an encoding (hex, utf8, ascii, base64).
fn encode_bytes(b: &[u8], encoding: &str) -> Result<String> {
    Ok(match encoding.to_lowercase().as_str() {
        "hex" => b.iter().map(|x| format!("{x:02x}")).collect(),
        "utf8" => String::from_utf8_lossy(b).into_owned(),
        "ascii" => b
            .iter()
            .map(|&x| if x.is_ascii() { x as char } else { '\u{fffd}' })
            .collect(),
        "base64" => base64::engine::general_purpose::STANDARD.encode(b),
        other => return Err(row_error(format!("Unknown encoding: {other}"))),
    })
}

/// The bytes argument as exactly N bytes, in the byte order the second argument names.
fn fixed_bytes<const N: usize>(a: &[ScalarValue]) -> Result<Option<[u8; N]>> {
    let Some(b) = bytes(&a[0]) else {
        return Ok(None);
    };
    let mut out: [u8; N] = b.try_into().map_err(|_| {
        row_error(format!(
            "Number of bytes must be equal to {N}, but found {}",
            b.len()
        ))
    })?;
    match a.get(1).and_then(text).map(str::to_uppercase).as_deref() {
        None | Some("BIG_ENDIAN") => {}
        Some("LITTLE_ENDIAN") => out.reverse(),
        Some(other) => return Err(row_error(format!("Invalid byte order: {other}"))),
    }
    Ok(Some(out))
}

/// `\uXXXX` (or a surrogate pair of them) as a character.
fn chr_from_escape(s: &str) -> Option<char> {
    let units: Vec<u16> = s
        .split("\\u")
        .skip(1)
        .map(|h| u16::from_str_radix(h, 16).ok())
        .collect::<Option<_>>()?;
    if units.is_empty() || !s.starts_with("\\u") {
        return None;
    }
    let mut decoded = char::decode_utf16(units);
    let c = decoded.next()?.ok()?;
    decoded.next().is_none().then_some(c)
}

/// A URL cut into its parts, as java.net.URI cuts it.
struct Url<'a> {
    scheme: &'a str,
    host: Option<&'a str>,
    port: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
    fragment: Option<&'a str>,
}

impl<'a> Url<'a> {
    fn parse(s: &'a str) -> Url<'a> {
        let (rest, fragment) = match s.split_once('#') {
            Some((r, f)) => (r, Some(f)),
            None => (s, None),
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (scheme, rest) = match rest.split_once("://") {
            Some((sch, r)) => (sch, Some(r)),
            None => ("", None),
        };
        let (host, port, path) = match rest {
            Some(r) => {
                let (authority, path) = match r.find('/') {
                    Some(i) => (&r[..i], &r[i..]),
                    None => (r, ""),
                };
                let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
                let (host, port) = match hostport.rsplit_once(':') {
                    Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => (h, Some(p)),
                    _ => (hostport, None),
                };
                (Some(host).filter(|h| !h.is_empty()), port, path)
            }
            None => (None, None, before_query(s)),
        };
        Url {
            scheme,
            host,
            port,
            path,
            query,
            fragment,
        }
    }
}

/// The path of a URL without a scheme: everything before `?` and `#`.
fn before_query(s: &str) -> &str {
    let end = s.find(['?', '#']).unwrap_or(s.len());
    &s[..end]
}

fn url_part(
    a: &[ScalarValue],
    t: &DataType,
    part: fn(&Url) -> Option<String>,
) -> Result<ScalarValue> {
    let Some(s) = text(&a[0]) else {
        return null_of(t);
    };
    Ok(ScalarValue::Utf8(part(&Url::parse(s))))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(hex, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `application/x-www-form-urlencoded`, as Java's URLEncoder writes it.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instr_like_ksqldb() {
        assert_eq!(instr("corporate floor", "or", 1, 1), 2);
        assert_eq!(instr("corporate floor", "or", 4, 2), 14);
        assert_eq!(instr("corporate floor", "or", -3, 2), 2);
        assert_eq!(instr("short", "or", 4, 2), 0);
    }

    #[test]
    fn urls() {
        let u = Url::parse("http://test@confluent.io:8080/nested/path?query&jobs#frag");
        assert_eq!(u.scheme, "http");
        assert_eq!(u.host, Some("confluent.io"));
        assert_eq!(u.port, Some("8080"));
        assert_eq!(u.path, "/nested/path");
        assert_eq!(u.query, Some("query&jobs"));
        assert_eq!(u.fragment, Some("frag"));
        assert_eq!(Url::parse("www.confluent.io").scheme, "");
        assert_eq!(form_encode("a b&c"), "a+b%26c");
        assert_eq!(percent_decode("a%20b"), "a b");
    }

    #[test]
    fn text_and_bytes() {
        assert_eq!(initcap("the   Quick br0wn fOx"), "The   Quick Br0wn Fox");
        assert_eq!(initcap("some_string"), "Some_string");
        assert_eq!(chr_from_escape("\\u004b"), Some('K'));
        assert_eq!(chr_from_escape("75"), None);
        assert_eq!(split_by(b",A,", b","), vec![&b""[..], b"A", b""]);
        assert_eq!(
            encode_bytes(&decode_text("Example!", "ascii").unwrap(), "hex").unwrap(),
            "4578616d706c6521"
        );
    }
}
