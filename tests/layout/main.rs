//! The structure of the source tree, checked: no import cycle between the crate's modules, no
//! source file over 600 lines (the command metadata table excepted), no tracker numbers in
//! code, tests or docs of code.
//!
//! **AcyclicModules.** Each file of `src/` is a module; module A depends on module B when A names
//! B or an item of B in a `use` declaration or a path (`crate::raft::status::Status`,
//! `super::txn::...`, `child::Item`). A path that names an item re-exported by a module depends
//! on that module (its facade), not on the file that defines the item. A dependency of a module
//! on one of its ancestors is not counted: Rust lets a child see its parent's private items, and
//! `use super::*` in a child is the language's idiom, while the parent's own `mod`/`pub use` of
//! the child is counted. Test-only modules (`#[cfg(test)]`) are left out. A cycle among the
//! rest fails, listing the modules in it and what each takes from the next, so the mend is
//! visible. The check reads source text (comments, strings and test modules stripped); it
//! follows the same rules as `cargo modules dependencies --acyclic` without building the crate
//! with rust-analyzer, which CI could not afford.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Longest source file allowed in `src/` (lines).
const MAX_LINES: usize = 600;

/// Files allowed past [`MAX_LINES`]: the command table's data (Redis's COMMAND metadata, one
/// entry per command).
const LONG_FILES_ALLOWED: &[&str] = &["src/commands/table/data.rs"];

/// A module of the crate: its path (`["raft", "status"]`; the root is empty).
#[derive(Debug)]
struct Module {
    path: Vec<String>,
    /// Names of its child modules that are compiled outside tests.
    children: BTreeSet<String>,
    /// The file's text with comments, strings and test-only items blanked.
    code: String,
}

/// Blanks comments, string and char literals, keeping line structure.
fn strip(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |out: &mut String, s: &[u8]| {
        for &c in s {
            out.push(if c == b'\n' { '\n' } else { ' ' });
        }
    };
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            let end = b[i..]
                .iter()
                .position(|&x| x == b'\n')
                .map_or(b.len(), |p| i + p);
            blank(&mut out, &b[i..end]);
            i = end;
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let (mut depth, mut j) = (1, i + 2);
            while j < b.len() && depth > 0 {
                if b[j] == b'/' && b.get(j + 1) == Some(&b'*') {
                    depth += 1;
                    j += 2;
                } else if b[j] == b'*' && b.get(j + 1) == Some(&b'/') {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            blank(&mut out, &b[i..j.min(b.len())]);
            i = j.min(b.len());
        } else if c == b'r'
            && (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#'))
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
        {
            // Raw string r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(c as char);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == b'"'
                    && b[j + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|&&x| x == b'#')
                        .count()
                        == hashes
                {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            blank(&mut out, &b[i..j.min(b.len())]);
            i = j.min(b.len());
        } else if c == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(b.len());
            blank(&mut out, &b[i..end]);
            i = end;
        } else if c == b'\'' {
            // A char literal ('a', '\n', '\''), not a lifetime ('a).
            let lit_end = if b.get(i + 1) == Some(&b'\\') {
                b[i + 2..]
                    .iter()
                    .position(|&x| x == b'\'')
                    .map(|p| i + 2 + p + 1)
            } else if b.get(i + 2) == Some(&b'\'') {
                Some(i + 3)
            } else {
                // Multi-byte UTF-8 char literal: up to 4 bytes then a quote.
                (2..=5)
                    .find(|&k| b.get(i + k) == Some(&b'\''))
                    .filter(|_| b.get(i + 1).is_some_and(|&x| x >= 0x80))
                    .map(|k| i + k + 1)
            };
            match lit_end {
                Some(end) => {
                    blank(&mut out, &b[i..end]);
                    i = end;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            // Keep multi-byte characters whole.
            let ch = text[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// Index of the `}` that closes the `{` at `open`.
fn matching_brace(code: &[u8], open: usize) -> usize {
    let mut depth = 0;
    for (i, &c) in code.iter().enumerate().skip(open) {
        match c {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    code.len() - 1
}

/// Blanks every item under `#[cfg(test)]` and returns the names of test-only `mod x;`.
fn drop_test_items(code: &mut String) -> BTreeSet<String> {
    let mut test_mods = BTreeSet::new();
    let mut from = 0;
    while let Some(p) = code[from..].find("#[cfg(test)]") {
        let at = from + p;
        let bytes = code.as_bytes();
        let semi = code[at..].find(';').map(|x| at + x);
        let brace = code[at..].find('{').map(|x| at + x);
        let end = match (semi, brace) {
            (Some(s), Some(b)) if s < b => s,
            (Some(s), None) => s,
            (_, Some(b)) => matching_brace(bytes, b),
            (None, None) => code.len() - 1,
        };
        let item = code[at..=end].to_string();
        if let Some(name) = item_mod_name(&item) {
            if item.trim_end().ends_with(';') {
                test_mods.insert(name);
            }
        }
        let blanked: String = item
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect();
        code.replace_range(at..=end, &blanked);
        from = at + blanked.len();
    }
    test_mods
}

/// The name of the module an item declares (`mod x;`, `pub(crate) mod x {`), if it is one.
fn item_mod_name(item: &str) -> Option<String> {
    let words: Vec<&str> = item
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    let i = words.iter().position(|w| *w == "mod")?;
    // Skip attribute words before `mod` (cfg, test, path, pub, crate ...).
    words.get(i + 1).map(|s| s.to_string())
}

/// Child modules declared in `code` as `mod x;` (not test-only), with a `#[path]` if given.
fn declared_mods(code: &str, raw: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for (line_no, line) in code.lines().enumerate() {
        let t = line.trim();
        let t = t
            .strip_prefix("pub(crate) ")
            .or_else(|| t.strip_prefix("pub(super) "))
            .or_else(|| t.strip_prefix("pub "))
            .unwrap_or(t);
        if let Some(rest) = t.strip_prefix("mod ") {
            if let Some(name) = rest.strip_suffix(';') {
                // A `#[path = "..."]` on the line before (read from the raw text: strings are
                // blanked in `code`).
                let prev = raw
                    .lines()
                    .nth(line_no.wrapping_sub(1))
                    .unwrap_or("")
                    .trim();
                let path = prev
                    .strip_prefix("#[path = \"")
                    .and_then(|p| p.strip_suffix("\"]"))
                    .map(str::to_string);
                out.push((name.trim().to_string(), path));
            }
        }
    }
    out
}

/// Reads the module tree from `root_file` (lib.rs or main.rs).
fn load_tree(root_file: &Path) -> Vec<Module> {
    let mut modules = Vec::new();
    let mut todo = vec![(Vec::<String>::new(), root_file.to_path_buf())];
    while let Some((path, file)) = todo.pop() {
        let raw = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut code = strip(&raw);
        let test_mods = drop_test_items(&mut code);
        let dir = file.parent().unwrap().to_path_buf();
        let stem = file.file_stem().unwrap().to_string_lossy().to_string();
        let is_mod_rs = matches!(stem.as_str(), "mod" | "lib" | "main");
        let mut children = BTreeSet::new();
        for (name, explicit) in declared_mods(&code, &raw) {
            if test_mods.contains(&name) {
                continue;
            }
            let child_file = match explicit {
                Some(p) => dir.join(p),
                None => {
                    let base = if is_mod_rs {
                        dir.clone()
                    } else {
                        dir.join(&stem)
                    };
                    let flat = base.join(format!("{name}.rs"));
                    if flat.exists() {
                        flat
                    } else {
                        base.join(&name).join("mod.rs")
                    }
                }
            };
            let mut child_path = path.clone();
            child_path.push(name.clone());
            children.insert(name);
            todo.push((child_path, child_file));
        }
        modules.push(Module {
            path,
            children,
            code,
        });
    }
    modules
}

/// Expands a `use` tree (`a::{b, c::d as e, f::*}`) into full paths.
fn expand_use(tree: &str) -> Vec<Vec<String>> {
    fn parse(s: &[char], i: &mut usize, prefix: &[String], out: &mut Vec<Vec<String>>) {
        let mut path = prefix.to_vec();
        let mut ident = String::new();
        while *i < s.len() {
            let c = s[*i];
            if c.is_alphanumeric() || c == '_' || c == '*' {
                ident.push(c);
                *i += 1;
            } else if c == ':' {
                if !ident.is_empty() {
                    path.push(std::mem::take(&mut ident));
                }
                *i += 1;
            } else if c == '{' {
                *i += 1;
                loop {
                    parse(s, i, &path, out);
                    if *i < s.len() && s[*i] == ',' {
                        *i += 1;
                        continue;
                    }
                    break;
                }
                if *i < s.len() && s[*i] == '}' {
                    *i += 1;
                }
                return;
            } else if c == ',' || c == '}' {
                break;
            } else if c.is_whitespace() {
                // `x as y`: the rename does not change what is named.
                if ident == "as" {
                    ident.clear();
                    while *i < s.len() && !(s[*i] == ',' || s[*i] == '}') {
                        *i += 1;
                    }
                    break;
                }
                if !ident.is_empty() {
                    path.push(std::mem::take(&mut ident));
                }
                *i += 1;
            } else {
                *i += 1;
            }
        }
        if !ident.is_empty() {
            path.push(ident);
        }
        if path.last().is_some_and(|l| l == "as") {
            path.pop();
        }
        // `use x::y as z`: drop `as z`.
        if let Some(p) = path.iter().position(|w| w == "as") {
            path.truncate(p);
        }
        if path.last().is_some_and(|l| l == "self") {
            path.pop();
        }
        if !path.is_empty() {
            out.push(path);
        }
    }
    let chars: Vec<char> = tree.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    parse(&chars, &mut i, &[], &mut out);
    out
}

/// Every path named in `code`: the `use` declarations expanded, and `a::b::c` paths in code.
fn named_paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < bytes.len() {
        // `use` at a word boundary: take the tree up to `;`.
        // Byte-wise: `i` may sit inside a multi-byte character, where `code[i..]` would panic.
        let semi = bytes[i..].iter().position(|&c| c == b';');
        if let (true, Some(semi)) = (
            bytes[i..].starts_with(b"use ") && (i == 0 || !is_ident(bytes[i - 1])),
            semi,
        ) {
            let end = i + semi;
            out.extend(expand_use(&code[i + 4..end]));
            i = end;
            continue;
        }
        i += 1;
    }
    // Paths in code: ident(::ident)+, not preceded by `::` (those are tails of longer paths).
    let mut j = 0;
    while j < bytes.len() {
        if is_ident(bytes[j]) && (j == 0 || !(is_ident(bytes[j - 1]) || bytes[j - 1] == b':')) {
            let mut segs = Vec::new();
            let mut k = j;
            loop {
                let start = k;
                while k < bytes.len() && is_ident(bytes[k]) {
                    k += 1;
                }
                segs.push(code[start..k].to_string());
                if code[k..].starts_with("::") && k + 2 < bytes.len() && is_ident(bytes[k + 2]) {
                    k += 2;
                } else {
                    break;
                }
            }
            if segs.len() > 1 {
                out.push(segs);
            }
            j = k.max(j + 1);
        } else {
            j += 1;
        }
    }
    out
}

/// The module a path names, from module `at`: the deepest module its leading segments reach.
fn resolve(
    at: &[String],
    path: &[String],
    children: &BTreeMap<Vec<String>, BTreeSet<String>>,
) -> Option<Vec<String>> {
    let mut segs = path.iter().peekable();
    let mut cur: Vec<String> = match segs.peek()?.as_str() {
        "crate" => {
            segs.next();
            Vec::new()
        }
        "self" => {
            segs.next();
            at.to_vec()
        }
        "super" => {
            let mut m = at.to_vec();
            while segs.peek().map(|s| s.as_str()) == Some("super") {
                segs.next();
                m.pop()?;
            }
            m
        }
        first if children.get(at).is_some_and(|c| c.contains(first)) => at.to_vec(),
        _ => return None, // another crate, a local name or a type's associated item
    };
    for s in segs {
        match children.get(&cur) {
            Some(c) if c.contains(s) => cur.push(s.clone()),
            _ => break,
        }
    }
    Some(cur)
}

fn name(path: &[String]) -> String {
    if path.is_empty() {
        "crate".into()
    } else {
        path.join("::")
    }
}

/// Strongly connected components of more than one module (Tarjan).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<String, usize>,
        low: BTreeMap<String, usize>,
        stack: Vec<String>,
        on: BTreeSet<String>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit(t: &mut T, v: &str) {
        t.index.insert(v.into(), t.next);
        t.low.insert(v.into(), t.next);
        t.next += 1;
        t.stack.push(v.into());
        t.on.insert(v.into());
        let outs: Vec<String> = t.edges.get(v).into_iter().flatten().cloned().collect();
        for w in outs {
            if !t.index.contains_key(&w) {
                visit(t, &w);
                let lw = t.low[&w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(&w) {
                let iw = t.index[&w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(&w);
                let done = w == v;
                comp.push(w);
                if done {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    let nodes: Vec<String> = edges.keys().cloned().collect();
    for v in nodes {
        if !t.index.contains_key(&v) {
            visit(&mut t, &v);
        }
    }
    t.out
}

/// Module dependencies of one crate (`lib.rs` or `main.rs` tree): module → module → names.
fn dependencies(root_file: &Path) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let modules = load_tree(root_file);
    let children: BTreeMap<Vec<String>, BTreeSet<String>> = modules
        .iter()
        .map(|m| (m.path.clone(), m.children.clone()))
        .collect();
    let mut deps: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for m in &modules {
        let from = name(&m.path);
        deps.entry(from.clone()).or_default();
        for p in named_paths(&m.code) {
            let Some(to) = resolve(&m.path, &p, &children) else {
                continue;
            };
            // A module's dependency on itself or one of its ancestors is not counted.
            if m.path.starts_with(&to) {
                continue;
            }
            let what = p.last().cloned().unwrap_or_default();
            deps.entry(from.clone())
                .or_default()
                .entry(name(&to))
                .or_default()
                .insert(what);
        }
    }
    deps
}

fn describe(
    deps: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    comp: &[String],
) -> String {
    let mut s = format!("cycle among {}:\n", comp.join(", "));
    for a in comp {
        for (b, names) in deps.get(a).into_iter().flatten() {
            if comp.contains(b) {
                let names: Vec<&str> = names.iter().map(String::as_str).take(6).collect();
                s.push_str(&format!("  {a} -> {b}: {}\n", names.join(", ")));
            }
        }
    }
    s
}

fn check_acyclic(root_file: &Path) -> Vec<String> {
    let deps = dependencies(root_file);
    let edges: BTreeMap<String, BTreeSet<String>> = deps
        .iter()
        .map(|(a, bs)| (a.clone(), bs.keys().cloned().collect()))
        .collect();
    cycles(&edges).iter().map(|c| describe(&deps, c)).collect()
}

#[test]
fn no_import_cycle_between_modules() {
    let mut found = check_acyclic(&Path::new(ROOT).join("src/lib.rs"));
    found.extend(check_acyclic(&Path::new(ROOT).join("src/main.rs")));
    assert!(
        found.is_empty(),
        "import cycles (AcyclicModules):\n{}",
        found.join("\n")
    );
}

/// The checker itself: a cycle is found and a parent/child pair is not one.
#[test]
fn the_cycle_check_sees_a_cycle_and_allows_a_parent_facade() {
    let dir = tempfile::tempdir().unwrap();
    let w = |p: &str, s: &str| {
        let f = dir.path().join(p);
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(f, s).unwrap();
    };
    w(
        "lib.rs",
        "mod a;\nmod b;\nmod c;\n#[cfg(test)]\nmod t;\npub use a::A;\n",
    );
    w(
        "a/mod.rs",
        "mod inner;\npub use inner::A;\nuse crate::b::B;\n",
    );
    w(
        "a/inner.rs",
        "use super::*; // a child may use its parent\npub struct A;\n",
    );
    w(
        "b.rs",
        "pub struct B;\npub fn f() { let _ = crate::c::C; let _é = 1; }\n",
    );
    w(
        "c.rs",
        "use crate::a::{self, A as Aa};\npub struct C;\n// use crate::b;\n",
    );
    w("t.rs", "use crate::c::C;\n");
    let found = check_acyclic(&dir.path().join("lib.rs"));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("cycle among a, b, c:"), "{}", found[0]);
    // Breaking one edge ends it; comments, strings and test modules never counted.
    w("c.rs", "pub struct C;\nconst S: &str = \"crate::a::A\";\n");
    assert!(check_acyclic(&dir.path().join("lib.rs")).is_empty());
}

#[test]
fn no_source_file_over_600_lines() {
    let mut long = Vec::new();
    let mut stack = vec![PathBuf::from(ROOT).join("src")];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p.strip_prefix(ROOT).unwrap().to_string_lossy().to_string();
                let lines = fs::read_to_string(&p).unwrap().lines().count();
                if lines > MAX_LINES && !LONG_FILES_ALLOWED.contains(&rel.as_str()) {
                    long.push(format!("{rel}: {lines} lines"));
                }
            }
        }
    }
    long.sort();
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines:\n{}",
        long.join("\n")
    );
}

/// Code, tests and their docs name capabilities and bugs, never tracker numbers
/// (`grep -rn 'issue[ _]\?[0-9]' src tests jepsen benches` finds nothing).
#[test]
fn no_tracker_numbers_in_code() {
    let mut hits = Vec::new();
    for top in ["src", "tests", "jepsen", "benches"] {
        let mut stack = vec![PathBuf::from(ROOT).join(top)];
        while let Some(d) = stack.pop() {
            let Ok(rd) = fs::read_dir(&d) else { continue };
            for e in rd {
                let p = e.unwrap().path();
                if p.is_dir() {
                    if p.file_name()
                        .is_some_and(|n| n == "target" || n == "node_modules")
                    {
                        continue;
                    }
                    stack.push(p);
                    continue;
                }
                let Ok(text) = fs::read_to_string(&p) else {
                    continue;
                };
                for (n, line) in text.lines().enumerate() {
                    let b = line.as_bytes();
                    let hit = line.match_indices("issue").any(|(i, _)| {
                        let rest = &b[i + 5..];
                        let rest = if rest.first().is_some_and(|&c| c == b' ' || c == b'_') {
                            &rest[1..]
                        } else {
                            rest
                        };
                        rest.first().is_some_and(u8::is_ascii_digit)
                    });
                    if hit {
                        let rel = p.strip_prefix(ROOT).unwrap().display().to_string();
                        hits.push(format!("{rel}:{}: {}", n + 1, line.trim()));
                    }
                }
            }
        }
    }
    assert!(hits.is_empty(), "tracker numbers:\n{}", hits.join("\n"));
}
