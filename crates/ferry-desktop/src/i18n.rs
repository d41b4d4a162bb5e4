//! The words the desktop app shows (tray, notifications), in English and
//! Norwegian Bokmål, from Project Fluent files (`locales/*/desktop.ftl`)
//! built into the binary.
//!
//! A missing or broken message never panics and never shows nothing: it
//! falls back to English, then to the message id, and is logged.

use std::sync::OnceLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

/// The languages Ferry speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Locale {
    #[default]
    En,
    Nb,
}

/// The values of the `language` preference: follow the system, or one of
/// the locales' codes.
pub const PREFERENCES: &[&str] = &["system", "nb", "en"];

impl Locale {
    pub const ALL: [Locale; 2] = [Locale::En, Locale::Nb];

    /// The code the window gets (`AppInfo.locale`) and the preference uses.
    pub fn code(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::Nb => "nb",
        }
    }

    /// A POSIX locale value (`nb_NO.UTF-8`) or a language tag: Norwegian of
    /// any written form (`nb`, `no`, `nn`) reads Bokmål, anything else English.
    pub fn from_tag(tag: &str) -> Locale {
        let t = tag.trim().to_ascii_lowercase();
        if ["nb", "no", "nn"].iter().any(|p| t.starts_with(p)) {
            Locale::Nb
        } else {
            Locale::En
        }
    }

    /// The system's language: the first set of `LC_ALL`, `LC_MESSAGES`,
    /// `LANG` (the order POSIX gives them for messages).
    pub fn from_env() -> Locale {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    fn from_vars(get: impl Fn(&str) -> Option<String>) -> Locale {
        ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .filter_map(|k| get(k))
            .find(|v| !v.trim().is_empty())
            .map(|v| Locale::from_tag(&v))
            .unwrap_or_default()
    }

    /// The locale for a `language` preference: `"nb"`/`"en"` win,
    /// `"system"` (or anything unknown) follows the system.
    pub fn for_preference(pref: &str) -> Locale {
        match pref {
            "nb" => Locale::Nb,
            "en" => Locale::En,
            _ => Locale::from_env(),
        }
    }
}

/// The Fluent sources, per locale (every desktop file of that language).
pub fn sources(locale: Locale) -> &'static [(&'static str, &'static str)] {
    match locale {
        Locale::En => &[("locales/en/desktop.ftl", include_str!("../../../locales/en/desktop.ftl"))],
        Locale::Nb => &[("locales/nb/desktop.ftl", include_str!("../../../locales/nb/desktop.ftl"))],
    }
}

type Bundle = FluentBundle<FluentResource>;

struct Catalog {
    en: Bundle,
    nb: Bundle,
}

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| Catalog { en: bundle(Locale::En), nb: bundle(Locale::Nb) })
}

fn bundle(locale: Locale) -> Bundle {
    let lang = locale.code().parse().unwrap_or_default();
    let mut bundle = FluentBundle::new_concurrent(vec![lang]);
    // The bidi isolation marks Fluent puts around arguments show up as
    // boxes in some panels' menus; these texts are all left-to-right.
    bundle.set_use_isolating(false);
    for (name, text) in sources(locale) {
        // A parse error keeps the messages that did parse.
        let resource = match FluentResource::try_new(text.to_string()) {
            Ok(r) => r,
            Err((r, errors)) => {
                tracing::error!(file = name, ?errors, "messages with errors; using the rest");
                r
            }
        };
        if let Err(errors) = bundle.add_resource(resource) {
            tracing::error!(file = name, ?errors, "messages could not all be added");
        }
    }
    bundle
}

/// One argument of a message.
pub type Arg<'a> = (&'a str, FluentValue<'a>);

/// The message `id` in `locale`, without arguments.
pub fn tr(locale: Locale, id: &str) -> String {
    tr_args(locale, id, &[])
}

/// The message `id` in `locale` with `args` (numbers choose plural forms).
pub fn tr_args(locale: Locale, id: &str, args: &[Arg<'_>]) -> String {
    let c = catalog();
    let bundle = match locale {
        Locale::En => &c.en,
        Locale::Nb => &c.nb,
    };
    if let Some(text) = format(bundle, id, args) {
        return text;
    }
    tracing::warn!(id, locale = locale.code(), "message missing; falling back to English");
    if locale != Locale::En {
        if let Some(text) = format(&c.en, id, args) {
            return text;
        }
    }
    tracing::error!(id, "message missing in English too; showing its id");
    id.to_string()
}

fn format(bundle: &Bundle, id: &str, args: &[Arg<'_>]) -> Option<String> {
    let pattern = bundle.get_message(id)?.value()?;
    let mut fluent_args = FluentArgs::new();
    for (name, value) in args {
        fluent_args.set(*name, value.clone());
    }
    let mut errors = Vec::new();
    let text = bundle.format_pattern(pattern, Some(&fluent_args), &mut errors).into_owned();
    if !errors.is_empty() {
        // E.g. an argument the translation names but the code does not pass:
        // the text is still shown, with the placeholder's name in it.
        tracing::warn!(id, ?errors, "message formatted with errors");
    }
    Some(text)
}

#[cfg(test)]
mod tests;
