//! The extra libraries Redis gives scripts: `cjson` (encode, decode, `cjson.null`) and `bit`
//! (Lua BitOp: tobit tohex bnot band bor bxor lshift rshift arshift rol ror bswap), and Lua's
//! own number-to-text rule (`%.14g`), which both need.
//!
//! Deterministic like the rest of a script: `cjson.encode` walks a table in Lua's own `next`
//! order, which depends only on how the table was built, the same on every node. Differences
//! from Redis's lua-cjson: decode errors have serde_json's wording, and nesting is limited to
//! 1,000 levels for encode, 128 for decode (serde_json's own limit).

use mlua::{LightUserData, Lua, MultiValue, Table, Value};

use super::errors::lib_error;

/// Nesting limit of `cjson.encode` and `cjson.decode`.
const MAX_DEPTH: usize = 1000;

/// Installs `cjson` and `bit` as globals.
pub(super) fn install(lua: &Lua) -> mlua::Result<()> {
    let g = lua.globals();
    g.raw_set("cjson", cjson(lua)?)?;
    g.raw_set("bit", bit(lua)?)?;
    Ok(())
}

/// `cjson.null`: a light userdata holding NULL, as lua-cjson's.
fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

fn cjson(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("null", null())?;
    t.raw_set(
        "encode",
        lua.create_function(|lua, args: MultiValue| {
            if args.len() != 1 {
                return Err(lib_error(
                    lua,
                    "bad argument #1 to 'encode' (expected 1 argument)",
                ));
            }
            let mut out = Vec::new();
            encode(&args[0], &mut out, 0).map_err(|text| lib_error(lua, text))?;
            lua.create_string(&out)
        })?,
    )?;
    t.raw_set(
        "decode",
        lua.create_function(|lua, s: mlua::String| {
            let json: serde_json::Value = serde_json::from_slice(&s.as_bytes())
                .map_err(|e| lib_error(lua, format!("cjson.decode: {e}")))?;
            decode(lua, json, 0).map_err(|e| match e {
                mlua::Error::RuntimeError(text) => lib_error(lua, text),
                e => e,
            })
        })?,
    )?;
    Ok(t)
}

/// lua-cjson's encoder: what it writes, or the text of its error.
fn encode(v: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err("Cannot serialise, excessive nesting (1001)".into());
    }
    let lua_err = |e: mlua::Error| e.to_string();
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(i) => encode_number(*i as f64, out)?,
        Value::Number(n) => encode_number(*n, out)?,
        Value::String(s) => encode_string(&s.as_bytes(), out),
        Value::Table(t) => {
            // An array when every key is a positive integer (1..=n with at most half holes,
            // lua-cjson's default sparse rule), else an object; an empty table is `{}`.
            let mut max = 0usize;
            let mut count = 0usize;
            let mut array = true;
            for pair in t.clone().pairs::<Value, Value>() {
                let (k, _) = pair.map_err(lua_err)?;
                count += 1;
                match k {
                    Value::Integer(i) if i >= 1 => max = max.max(i as usize),
                    Value::Number(n) if n >= 1.0 && n.fract() == 0.0 => max = max.max(n as usize),
                    _ => array = false,
                }
            }
            if array && count > 0 && (max <= count * 2 || max <= 10) {
                out.push(b'[');
                for i in 1..=max {
                    if i > 1 {
                        out.push(b',');
                    }
                    encode(&t.raw_get::<Value>(i).map_err(lua_err)?, out, depth + 1)?;
                }
                out.push(b']');
            } else if array && count > 0 {
                return Err("Cannot serialise table: excessively sparse array".into());
            } else {
                out.push(b'{');
                let mut first = true;
                for pair in t.clone().pairs::<Value, Value>() {
                    let (k, v) = pair.map_err(lua_err)?;
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    match &k {
                        Value::String(s) => encode_string(&s.as_bytes(), out),
                        Value::Integer(i) => encode_string(number_text(*i as f64).as_bytes(), out),
                        Value::Number(n) => encode_string(number_text(*n).as_bytes(), out),
                        other => {
                            return Err(format!(
                                "Cannot serialise {}: table key must be a number or string",
                                other.type_name()
                            ))
                        }
                    }
                    out.push(b':');
                    encode(&v, out, depth + 1)?;
                }
                out.push(b'}');
            }
        }
        other => {
            return Err(format!(
                "Cannot serialise {}: type not supported",
                other.type_name()
            ))
        }
    }
    Ok(())
}

/// A number as lua-cjson writes it: `%.14g` (`2^53` is `9.007199254741e+15`).
fn encode_number(n: f64, out: &mut Vec<u8>) -> Result<(), String> {
    if !n.is_finite() {
        return Err("Cannot serialise number: must not be NaN or Inf".into());
    }
    out.extend_from_slice(number_text(n).as_bytes());
    Ok(())
}

/// lua-cjson's string escapes: `"` `\` `/` and control characters; every other byte as it is
/// (UTF-8 text and binary alike: lua-cjson does not check UTF-8).
fn encode_string(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in bytes {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b if b < 0x20 || b == 0x7f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            b => out.push(b),
        }
    }
    out.push(b'"');
}

fn decode(lua: &Lua, v: serde_json::Value, depth: usize) -> mlua::Result<Value> {
    if depth > MAX_DEPTH {
        return Err(mlua::Error::runtime(
            "Found too many nested data structures",
        ));
    }
    Ok(match v {
        serde_json::Value::Null => null(),
        serde_json::Value::Bool(b) => Value::Boolean(b),
        serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Value::String(lua.create_string(&s)?),
        serde_json::Value::Array(items) => {
            let t = lua.create_table()?;
            for (i, item) in items.into_iter().enumerate() {
                t.raw_set(i + 1, decode(lua, item, depth + 1)?)?;
            }
            Value::Table(t)
        }
        serde_json::Value::Object(map) => {
            let t = lua.create_table()?;
            for (k, item) in map {
                t.raw_set(k, decode(lua, item, depth + 1)?)?;
            }
            Value::Table(t)
        }
    })
}

/// Lua 5.1's `tostring` of a number: C's `%.14g`.
pub(super) fn number_text(n: f64) -> String {
    g_format(n, 14)
}

/// A number passed to `redis.call`: Redis 7.0 formats it with `%.17g` (not Lua's
/// `tostring`, which loses precision), so `redis.call('set', k, 1/3)` stores
/// `0.33333333333333331`.
pub(super) fn call_argument_text(n: f64) -> String {
    g_format(n, 17)
}

/// C's `%.<p>g`.
fn g_format(n: f64, p: i32) -> String {
    if n == 0.0 {
        return if n.is_sign_negative() { "-0" } else { "0" }.into();
    }
    if !n.is_finite() {
        return if n.is_nan() {
            "nan".into()
        } else if n > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    let precision = p;
    // The exponent %g decides by is the one of the value rounded to p digits.
    let sci = format!("{:.*e}", (precision - 1) as usize, n);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= precision {
        let m = trim_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (precision - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{n:.decimals$}")).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Lua BitOp's argument rule (`barg`): a number (or a numeric string) to a 32-bit integer by
/// adding 2^52 + 2^51 and keeping the low word, which rounds half to even and wraps modulo
/// 2^32 (`bit.tobit(1.5)` is 2); anything else is `luaL_checknumber`'s error for argument `n`
/// of `name`.
fn tobit(lua: &Lua, name: &str, n: usize, v: Option<&Value>) -> mlua::Result<i32> {
    let x = match v {
        Some(Value::Integer(i)) => *i as f64,
        Some(Value::Number(x)) => *x,
        Some(Value::String(s)) => {
            match s.to_str().ok().and_then(|s| s.trim().parse::<f64>().ok()) {
                Some(x) => x,
                None => return Err(bad_number(lua, name, n, "string")),
            }
        }
        Some(other) => return Err(bad_number(lua, name, n, other.type_name())),
        None => return Err(bad_number(lua, name, n, "no value")),
    };
    Ok((x + 6_755_399_441_055_744.0).to_bits() as u32 as i32)
}

fn bad_number(lua: &Lua, name: &str, n: usize, got: &str) -> mlua::Error {
    lib_error(
        lua,
        format!("bad argument #{n} to '{name}' (number expected, got {got})"),
    )
}

fn bit(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    type Fold = fn(i32, i32) -> i32;
    let folds: [(&str, Fold); 3] = [
        ("band", |a, b| a & b),
        ("bor", |a, b| a | b),
        ("bxor", |a, b| a ^ b),
    ];
    for (name, f) in folds {
        t.raw_set(
            name,
            lua.create_function(move |lua, a: MultiValue| {
                let mut acc = tobit(lua, name, 1, a.front())?;
                for i in 1..a.len() {
                    acc = f(acc, tobit(lua, name, i + 1, a.get(i))?);
                }
                Ok(f64::from(acc))
            })?,
        )?;
    }
    type Shift = fn(i32, u32) -> i32;
    let shifts: [(&str, Shift); 5] = [
        ("lshift", |x, n| ((x as u32) << n) as i32),
        ("rshift", |x, n| ((x as u32) >> n) as i32),
        ("arshift", |x, n| x >> n),
        ("rol", |x, n| (x as u32).rotate_left(n) as i32),
        ("ror", |x, n| (x as u32).rotate_right(n) as i32),
    ];
    for (name, f) in shifts {
        t.raw_set(
            name,
            lua.create_function(move |lua, a: MultiValue| {
                let x = tobit(lua, name, 1, a.front())?;
                let n = tobit(lua, name, 2, a.get(1))? as u32 & 31;
                Ok(f64::from(f(x, n)))
            })?,
        )?;
    }
    type Unary = fn(i32) -> i32;
    let unary: [(&str, Unary); 3] = [
        ("tobit", |x| x),
        ("bnot", |x| !x),
        ("bswap", |x| x.swap_bytes()),
    ];
    for (name, f) in unary {
        t.raw_set(
            name,
            lua.create_function(move |lua, a: MultiValue| {
                Ok(f64::from(f(tobit(lua, name, 1, a.front())?)))
            })?,
        )?;
    }
    t.raw_set(
        "tohex",
        lua.create_function(|lua, a: MultiValue| {
            let x = tobit(lua, "tohex", 1, a.front())? as u32;
            let n = match a.get(1) {
                None | Some(Value::Nil) => 8,
                v => tobit(lua, "tohex", 2, v)?,
            };
            let digits = n.unsigned_abs().min(8) as usize;
            let text = if n < 0 {
                format!("{x:08X}")
            } else {
                format!("{x:08x}")
            };
            Ok(text[8 - digits..].to_string())
        })?,
    )?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::{call_argument_text, number_text};

    #[test]
    fn call_arguments_print_as_redis_7_0_does() {
        for (n, want) in [
            (1.0 / 3.0, "0.33333333333333331"),
            (1.5, "1.5"),
            (0.1, "0.10000000000000001"),
            (1e20, "1e+20"),
            (1152921504606846976.0, "1.152921504606847e+18"),
        ] {
            assert_eq!(call_argument_text(n), want, "{n}");
        }
    }

    #[test]
    fn numbers_print_as_lua_does() {
        for (n, want) in [
            (1.0, "1"),
            (1.5, "1.5"),
            (-2.25, "-2.25"),
            (0.1, "0.1"),
            (1e20, "1e+20"),
            (123456789012344.0, "1.2345678901234e+14"),
            (12345678901234.0, "12345678901234"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.234567890123456, "1.2345678901235"),
        ] {
            assert_eq!(number_text(n), want, "{n}");
        }
    }
}
