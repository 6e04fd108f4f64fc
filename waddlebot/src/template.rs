//! The template language of custom text commands.
//!
//! Text with variables in braces: `Hi {user}, you are visitor {count}!`. `{{` and `}}` stand for
//! literal braces. Templates are parsed when a command is created, so an unknown variable or a
//! broken template is refused with a message naming it, never discovered in chat.
//!
//! | variable | value |
//! |---|---|
//! | `{user}` | the caller's display name |
//! | `{touser}` | the first argument without a leading `@`, or the caller |
//! | `{args}` / `{all_args}` | everything after the command name |
//! | `{arg1}` … `{argN}` | the N-th argument, empty when missing |
//! | `{channel}` | the channel name |
//! | `{platform}` | the platform name |
//! | `{count}` | how many times this command has run while showing `{count}`, this time included |
//! | `{random A-B}` | a random whole number from A to B inclusive |
//!
//! ```
//! use waddlebot::template::{Template, Vars};
//! let template = Template::parse("Hi {touser}, says {user}").unwrap();
//! let args = vec!["@bob".to_string()];
//! let vars = Vars { user: "alice", args: &args, ..Vars::default() };
//! assert_eq!(template.render(&vars), "Hi bob, says alice");
//! assert!(Template::parse("Hi {usr}").unwrap_err().to_string().contains("{usr}"));
//! ```

use std::fmt;

/// The variable names a template may use, for error messages and help.
pub const VARIABLES: &str = "{user}, {touser}, {args}, {all_args}, {arg1}…{argN}, {channel}, {platform}, {count}, {random A-B}";

/// A parsed template, ready to render any number of times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Var(Var),
}

/// One variable of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    /// `{user}`
    User,
    /// `{touser}`
    ToUser,
    /// `{args}` or `{all_args}`
    Args,
    /// `{argN}`, 1-based.
    Arg(usize),
    /// `{channel}`
    Channel,
    /// `{platform}`
    Platform,
    /// `{count}`
    Count,
    /// `{random A-B}`
    Random(i64, i64),
}

/// Why a template was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// `{name}` is not a known variable.
    #[error("unknown variable {{{name}}} at character {position}; known variables: {VARIABLES}")]
    UnknownVariable {
        /// The name as written.
        name: String,
        /// 1-based character position of its `{`.
        position: usize,
    },
    /// A `{` without its `}`.
    #[error("'{{' at character {position} is never closed (write {{{{ for a literal brace)")]
    Unclosed {
        /// 1-based character position.
        position: usize,
    },
    /// A `}` without its `{`.
    #[error("'}}' at character {position} has no opening '{{' (write }}}} for a literal brace)")]
    UnmatchedClose {
        /// 1-based character position.
        position: usize,
    },
    /// `{random A-B}` with a bad range.
    #[error(
        "{{random {spec}}} at character {position} needs a range of whole numbers A-B with A <= B, like {{random 1-100}}"
    )]
    BadRandom {
        /// What was written after `random`.
        spec: String,
        /// 1-based character position.
        position: usize,
    },
}

/// The values a template is rendered with.
#[derive(Debug, Clone, Copy, Default)]
pub struct Vars<'a> {
    /// The caller's display name.
    pub user: &'a str,
    /// The arguments after the command name.
    pub args: &'a [String],
    /// The raw text after the command name (for `{args}`); when empty, the arguments joined by
    /// spaces are used.
    pub args_text: &'a str,
    /// The channel name.
    pub channel: &'a str,
    /// The platform name.
    pub platform: &'a str,
    /// The use count, for `{count}`.
    pub count: i64,
}

impl Template {
    /// Parses and checks a template.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = source.chars().enumerate().peekable();
        while let Some((index, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|&(_, next)| next) == Some('{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().map(|&(_, next)| next) == Some('}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => {
                    return Err(TemplateError::UnmatchedClose {
                        position: index + 1,
                    });
                }
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for (_, inner) in chars.by_ref() {
                        match inner {
                            '}' => {
                                closed = true;
                                break;
                            }
                            '{' => break,
                            other => name.push(other),
                        }
                    }
                    if !closed {
                        return Err(TemplateError::Unclosed {
                            position: index + 1,
                        });
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Var(parse_var(&name, index + 1)?));
                }
                other => literal.push(other),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Self { parts })
    }

    /// Whether the template uses this kind of variable (`{count}` needs a counter bump).
    pub fn uses(&self, var: Var) -> bool {
        self.parts.iter().any(|part| match (part, var) {
            (Part::Var(Var::Random(..)), Var::Random(..)) => true,
            (Part::Var(Var::Arg(_)), Var::Arg(_)) => true,
            (Part::Var(have), want) => *have == want,
            (Part::Literal(_), _) => false,
        })
    }

    /// Renders the template, cut at [`MAX_RENDERED_BYTES`] (at a character boundary): a
    /// template repeating `{args}` cannot turn one message into megabytes of reply.
    pub fn render(&self, vars: &Vars<'_>) -> String {
        self.render_within(vars, MAX_RENDERED_BYTES)
    }

    /// Renders the template, at most `limit` bytes of it: the output stops growing as soon as
    /// it reaches the limit, however long the values are.
    pub fn render_within(&self, vars: &Vars<'_>, limit: usize) -> String {
        // Room for the literal text and a short value per variable: most answers are written
        // without growing the string.
        let room: usize = self
            .parts
            .iter()
            .map(|part| match part {
                Part::Literal(text) => text.len(),
                Part::Var(_) => 16,
            })
            .sum();
        let mut out = String::with_capacity(room.min(limit));
        for part in &self.parts {
            let full = match part {
                Part::Literal(text) => push_within(&mut out, text, limit),
                Part::Var(var) => push_within(&mut out, &var_value(*var, vars), limit),
            };
            if full {
                break;
            }
        }
        out
    }
}

/// The most bytes a rendered template holds: well under what any platform takes in one
/// message (Slack 40,000 characters), and long replies are split at each platform's own limit
/// on delivery.
pub const MAX_RENDERED_BYTES: usize = 4000;

/// Appends as much of `text` as fits in `limit` bytes (whole characters); `true` once full.
pub fn push_within(out: &mut String, text: &str, limit: usize) -> bool {
    let room = limit.saturating_sub(out.len());
    if text.len() <= room {
        out.push_str(text);
        return out.len() >= limit;
    }
    let mut cut = room;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    out.push_str(&text[..cut]);
    true
}

impl fmt::Display for Template {
    /// Writes the template back in source form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Literal(text) => f.write_str(&text.replace('{', "{{").replace('}', "}}"))?,
                Part::Var(Var::User) => f.write_str("{user}")?,
                Part::Var(Var::ToUser) => f.write_str("{touser}")?,
                Part::Var(Var::Args) => f.write_str("{args}")?,
                Part::Var(Var::Arg(n)) => write!(f, "{{arg{n}}}")?,
                Part::Var(Var::Channel) => f.write_str("{channel}")?,
                Part::Var(Var::Platform) => f.write_str("{platform}")?,
                Part::Var(Var::Count) => f.write_str("{count}")?,
                Part::Var(Var::Random(low, high)) => write!(f, "{{random {low}-{high}}}")?,
            }
        }
        Ok(())
    }
}

fn parse_var(raw: &str, position: usize) -> Result<Var, TemplateError> {
    let name = raw.trim();
    let unknown = || TemplateError::UnknownVariable {
        name: name.to_owned(),
        position,
    };
    let lower = name.to_ascii_lowercase();
    if let Some(spec) = lower.strip_prefix("random") {
        if spec.is_empty() || spec.starts_with(char::is_whitespace) {
            return parse_random(spec.trim(), position);
        }
        return Err(unknown());
    }
    Ok(match lower.as_str() {
        "user" | "username" => Var::User,
        "touser" => Var::ToUser,
        "args" | "all_args" => Var::Args,
        "channel" => Var::Channel,
        "platform" => Var::Platform,
        "count" => Var::Count,
        other => match other.strip_prefix("arg").map(str::parse::<usize>) {
            Some(Ok(n)) if n >= 1 => Var::Arg(n),
            _ => return Err(unknown()),
        },
    })
}

fn parse_random(spec: &str, position: usize) -> Result<Var, TemplateError> {
    let bad = || TemplateError::BadRandom {
        spec: spec.to_owned(),
        position,
    };
    // A leading '-' belongs to the first number, so split on the first '-' after it.
    let split_at = spec
        .char_indices()
        .skip(1)
        .find(|&(_, c)| c == '-')
        .map(|(i, _)| i)
        .ok_or_else(bad)?;
    let low: i64 = spec[..split_at].trim().parse().map_err(|_| bad())?;
    let high: i64 = spec[split_at + 1..].trim().parse().map_err(|_| bad())?;
    if low > high {
        return Err(bad());
    }
    Ok(Var::Random(low, high))
}

fn var_value<'v>(var: Var, vars: &Vars<'v>) -> std::borrow::Cow<'v, str> {
    use std::borrow::Cow;
    match var {
        Var::User => Cow::Borrowed(vars.user),
        Var::ToUser => match vars.args.first() {
            Some(first) if !first.trim_start_matches('@').is_empty() => {
                Cow::Borrowed(first.trim_start_matches('@'))
            }
            _ => Cow::Borrowed(vars.user),
        },
        Var::Args if !vars.args_text.is_empty() => Cow::Borrowed(vars.args_text),
        Var::Args => Cow::Owned(vars.args.join(" ")),
        Var::Arg(n) => Cow::Borrowed(vars.args.get(n - 1).map_or("", String::as_str)),
        Var::Channel => Cow::Borrowed(vars.channel),
        Var::Platform => Cow::Borrowed(vars.platform),
        Var::Count => Cow::Owned(vars.count.to_string()),
        Var::Random(low, high) => Cow::Owned(fastrand::i64(low..=high).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(source: &str, args: &[&str]) -> String {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let vars = Vars {
            user: "alice",
            args: &args,
            args_text: "",
            channel: "pond",
            platform: "twitch",
            count: 7,
        };
        Template::parse(source)
            .expect("valid template")
            .render(&vars)
    }

    #[test]
    fn every_variable_renders() {
        assert_eq!(render("Hi {user}!", &[]), "Hi alice!");
        assert_eq!(render("{touser}", &["@bob"]), "bob");
        assert_eq!(render("{touser}", &[]), "alice");
        assert_eq!(render("{touser}", &["@"]), "alice");
        assert_eq!(render("{args}|{all_args}", &["a", "b"]), "a b|a b");
        assert_eq!(render("{arg2}-{arg9}", &["a", "b"]), "b-");
        assert_eq!(render("{channel} on {platform}", &[]), "pond on twitch");
        assert_eq!(render("#{count}", &[]), "#7");
        assert_eq!(render("{{literal}} }}", &[]), "{literal} }");
    }

    #[test]
    fn random_stays_in_range() {
        for _ in 0..200 {
            let n: i64 = render("{random -3-3}", &[]).parse().expect("a number");
            assert!((-3..=3).contains(&n), "{n}");
        }
        assert_eq!(render("{random 5-5}", &[]), "5");
    }

    #[test]
    fn broken_templates_are_refused_with_their_position() {
        assert_eq!(
            Template::parse("Hi {usr}"),
            Err(TemplateError::UnknownVariable {
                name: "usr".into(),
                position: 4
            })
        );
        assert_eq!(
            Template::parse("Hi {user"),
            Err(TemplateError::Unclosed { position: 4 })
        );
        assert_eq!(
            Template::parse("oops } here"),
            Err(TemplateError::UnmatchedClose { position: 6 })
        );
        assert!(matches!(
            Template::parse("{random 9-1}"),
            Err(TemplateError::BadRandom { .. })
        ));
        assert!(matches!(
            Template::parse("{random}"),
            Err(TemplateError::BadRandom { .. })
        ));
        assert!(matches!(
            Template::parse("{arg0}"),
            Err(TemplateError::UnknownVariable { .. })
        ));
        assert!(matches!(
            Template::parse("{randomly}"),
            Err(TemplateError::UnknownVariable { .. })
        ));
    }

    #[test]
    fn uses_reports_counters() {
        assert!(Template::parse("{count}").expect("valid").uses(Var::Count));
        assert!(!Template::parse("{user}").expect("valid").uses(Var::Count));
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics_and_valid_templates_round_trip(source in "\\PC{0,40}") {
            if let Ok(template) = Template::parse(&source) {
                let again = Template::parse(&template.to_string()).expect("display output parses");
                proptest::prop_assert_eq!(again, template);
            }
        }

        #[test]
        fn text_without_braces_renders_as_itself(source in "[^{}]{0,60}") {
            proptest::prop_assert_eq!(render(&source, &[]), source);
        }
    }

    #[test]
    fn a_reply_repeating_its_arguments_stops_at_the_limit() {
        let source = "{args}".repeat(83);
        let long = "é".repeat(2500);
        let reply = render(&source, &[long.as_str()]);
        assert!(reply.len() <= MAX_RENDERED_BYTES, "{} bytes", reply.len());
        assert!(
            reply.len() > MAX_RENDERED_BYTES - 4,
            "filled up to the limit"
        );
        assert!(
            reply.chars().all(|c| c == 'é'),
            "cut at a character boundary"
        );
    }

    #[test]
    fn short_replies_are_whole() {
        assert_eq!(render("hi {user}!", &[]), "hi alice!");
    }
}
