use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use fluent_syntax::ast;

use super::*;

#[test]
fn the_system_language_comes_from_lc_all_then_lc_messages_then_lang() {
    let env = |vars: &[(&str, &str)]| {
        let vars: BTreeMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Locale::from_vars(move |k| vars.get(k).cloned())
    };
    assert_eq!(env(&[]), Locale::En);
    assert_eq!(env(&[("LANG", "nb_NO.UTF-8")]), Locale::Nb);
    assert_eq!(env(&[("LANG", "no_NO")]), Locale::Nb);
    assert_eq!(env(&[("LANG", "nn_NO.UTF-8")]), Locale::Nb);
    assert_eq!(env(&[("LANG", "de_DE.UTF-8")]), Locale::En);
    assert_eq!(env(&[("LANG", "C.UTF-8")]), Locale::En);
    assert_eq!(env(&[("LANG", "nb_NO.UTF-8"), ("LC_MESSAGES", "en_GB.UTF-8")]), Locale::En);
    assert_eq!(env(&[("LANG", "en_US.UTF-8"), ("LC_MESSAGES", "nb_NO.UTF-8")]), Locale::Nb);
    assert_eq!(env(&[("LC_MESSAGES", "nb_NO"), ("LC_ALL", "en_US")]), Locale::En);
    // An empty variable counts as unset.
    assert_eq!(env(&[("LC_ALL", ""), ("LANG", "nb_NO")]), Locale::Nb);
}

#[test]
fn a_preference_overrides_the_system() {
    assert_eq!(Locale::for_preference("nb"), Locale::Nb);
    assert_eq!(Locale::for_preference("en"), Locale::En);
    assert_eq!(Locale::for_preference("system"), Locale::from_env());
    for p in PREFERENCES {
        assert!(["system", "nb", "en"].contains(p));
    }
}

#[test]
fn messages_are_looked_up_with_plurals_per_language() {
    assert_eq!(tr(Locale::En, "tray-sync-now"), "Sync now");
    assert_eq!(tr(Locale::Nb, "tray-sync-now"), "Synkroniser nå");
    let n = |count: u64| [("count", FluentValue::from(count))];
    assert_eq!(tr_args(Locale::En, "tray-conflicts", &n(1)), "1 conflict");
    assert_eq!(tr_args(Locale::En, "tray-conflicts", &n(2)), "2 conflicts");
    assert_eq!(tr_args(Locale::Nb, "tray-conflicts", &n(1)), "1 konflikt");
    assert_eq!(tr_args(Locale::Nb, "tray-conflicts", &n(3)), "3 konflikter");
    // No bidi isolation marks around arguments.
    assert!(!tr_args(Locale::En, "tray-waiting", &n(3)).contains('\u{2068}'));
}

#[test]
fn a_missing_message_shows_its_id_and_does_not_panic() {
    assert_eq!(tr(Locale::Nb, "tray-no-such-message"), "tray-no-such-message");
    assert_eq!(tr(Locale::En, "tray-no-such-message"), "tray-no-such-message");
    // A missing argument still gives text.
    assert!(tr(Locale::En, "tray-waiting").contains("waiting"));
}

/// The repository's `locales/` (every stream's files, read now, not at build time).
fn locales_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../locales")
}

/// What a message or term names, for comparing two languages: `id`,
/// `id.attribute`, `-term`, and the variables each uses (`id $count`).
#[derive(Default)]
struct Names {
    ids: BTreeMap<String, String>,
    variables: BTreeSet<String>,
}

fn variables_in(pattern: &ast::Pattern<&str>, out: &mut BTreeSet<String>) {
    fn inline(e: &ast::InlineExpression<&str>, out: &mut BTreeSet<String>) {
        match e {
            ast::InlineExpression::VariableReference { id } => {
                out.insert(id.name.to_string());
            }
            ast::InlineExpression::FunctionReference { arguments, .. } => {
                arguments.positional.iter().for_each(|a| inline(a, out));
                arguments.named.iter().for_each(|a| inline(&a.value, out));
            }
            ast::InlineExpression::Placeable { expression } => expr(expression, out),
            _ => {}
        }
    }
    fn expr(e: &ast::Expression<&str>, out: &mut BTreeSet<String>) {
        match e {
            ast::Expression::Inline(i) => inline(i, out),
            ast::Expression::Select { selector, variants } => {
                inline(selector, out);
                variants.iter().for_each(|v| variables_in(&v.value, out));
            }
        }
    }
    for el in &pattern.elements {
        if let ast::PatternElement::Placeable { expression } = el {
            expr(expression, out);
        }
    }
}

/// Reads every `.ftl` of one language; a parse error or an id defined
/// twice (in one file or across files) is a failure, named.
fn read_language(lang: &str, failures: &mut Vec<String>) -> Names {
    let dir = locales_dir().join(lang);
    let mut names = Names::default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "ftl"))
        .collect();
    files.sort();
    assert!(files.iter().any(|f| f.ends_with("desktop.ftl")), "no desktop.ftl in {}", dir.display());
    for file in files {
        let shown = format!("{lang}/{}", file.file_name().unwrap().to_string_lossy());
        let text = std::fs::read_to_string(&file).unwrap();
        let resource = match fluent_syntax::parser::parse(text.as_str()) {
            Ok(r) => r,
            Err((r, errors)) => {
                for e in errors {
                    failures.push(format!("{shown}: Fluent parse error {:?} at bytes {:?}", e.kind, e.pos));
                }
                r
            }
        };
        let mut define = |id: String, pattern: Option<&ast::Pattern<&str>>, names: &mut Names| {
            if let Some(other) = names.ids.insert(id.clone(), shown.clone()) {
                failures.push(format!("{shown}: `{id}` is also defined in {other}"));
            }
            let mut vars = BTreeSet::new();
            if let Some(p) = pattern {
                variables_in(p, &mut vars);
            }
            for v in vars {
                names.variables.insert(format!("{id} ${v}"));
            }
        };
        for entry in &resource.body {
            let (id, value, attributes) = match entry {
                ast::Entry::Message(m) => (m.id.name.to_string(), m.value.as_ref(), &m.attributes),
                ast::Entry::Term(t) => (format!("-{}", t.id.name), Some(&t.value), &t.attributes),
                _ => continue,
            };
            define(id.clone(), value, &mut names);
            for a in attributes {
                define(format!("{id}.{}", a.id.name), Some(&a.value), &mut names);
            }
        }
    }
    names
}

/// Every message (and attribute, and variable it uses) exists in both
/// languages, across all files of `locales/` — the window's too.
#[test]
fn english_and_norwegian_have_the_same_messages() {
    let mut failures = Vec::new();
    let en = read_language("en", &mut failures);
    let nb = read_language("nb", &mut failures);
    for (id, file) in &en.ids {
        if !nb.ids.contains_key(id) {
            failures.push(format!("`{id}` is in {file} but not in Norwegian (nb)"));
        }
    }
    for (id, file) in &nb.ids {
        if !en.ids.contains_key(id) {
            failures.push(format!("`{id}` is in {file} but not in English (en)"));
        }
    }
    for v in en.variables.symmetric_difference(&nb.variables) {
        let lang = if en.variables.contains(v) { "en" } else { "nb" };
        failures.push(format!("only {lang} uses the variable in `{v}`"));
    }
    assert!(failures.is_empty(), "locales/ en and nb differ:\n  {}", failures.join("\n  "));
    assert!(en.ids.len() > 30, "read only {} messages", en.ids.len());
}

/// The messages built into the binary are the files on disk, with no
/// desktop id outside the `tray-`/`notify-` prefixes (the window's files
/// share the namespace).
#[test]
fn the_built_in_messages_are_prefixed_and_all_load() {
    for locale in Locale::ALL {
        for (name, text) in sources(locale) {
            let on_disk = std::fs::read_to_string(locales_dir().join("..").join(name)).unwrap();
            assert_eq!(&on_disk, text, "{name}");
            let resource = fluent_syntax::parser::parse(*text).unwrap_or_else(|(_, e)| panic!("{name}: {e:?}"));
            for entry in resource.body {
                if let ast::Entry::Message(m) = entry {
                    let id = m.id.name;
                    assert!(id.starts_with("tray-") || id.starts_with("notify-"), "{name}: {id}");
                    // Formats without falling back to the id.
                    assert_ne!(tr(locale, id), id, "{name}: {id}");
                }
            }
        }
    }
}
