//! Recognising a command in a chat line.

use waddlebot::{Args, normalize_command_name};

/// A command as typed: prefix, canonical name, arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The prefix used (`!`, `#`, or `/` for platform slash commands).
    pub prefix: String,
    /// The command name, lower case, without prefix.
    pub name: String,
    /// Everything after the name.
    pub args: Args,
    /// Typed with the remote prefix: a community/remote module command.
    pub remote: bool,
}

/// The prefixes commands are recognised by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefixes {
    /// Local commands (built-in modules, custom commands, aliases).
    pub local: Vec<String>,
    /// Remote module commands.
    pub remote: String,
}

impl Prefixes {
    /// The prefixes stored command lines are written with (alias targets, rule commands):
    /// `!` local, `#` remote, whatever a community types.
    pub fn canonical() -> Self {
        Self {
            local: vec!["!".to_owned()],
            remote: "#".to_owned(),
        }
    }

    /// Parses a chat line as a command, if it is one.
    pub fn parse(&self, text: &str) -> Option<Invocation> {
        let all = self.local.iter().chain(std::iter::once(&self.remote));
        let mut invocation = command_line(text, all)?;
        invocation.remote = invocation.prefix == self.remote;
        Some(invocation)
    }
}

/// Parses `text` as a (local) command if it starts with one of `prefixes` directly followed by
/// a name.
/// `!` alone, `! ping` and text without a prefix are not commands.
pub fn command_line<'a>(
    text: &str,
    prefixes: impl IntoIterator<Item = &'a String>,
) -> Option<Invocation> {
    let text = text.trim_start();
    let prefix = prefixes
        .into_iter()
        .filter(|p| !p.is_empty() && text.starts_with(p.as_str()))
        .max_by_key(|p| p.len())?;
    let rest = &text[prefix.len()..];
    if rest.starts_with(char::is_whitespace) {
        return None;
    }
    let (name, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let name = normalize_command_name(name);
    if name.is_empty() {
        return None;
    }
    Some(Invocation {
        prefix: prefix.clone(),
        name,
        args: Args::parse(args),
        remote: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefixes() -> Vec<String> {
        vec!["!".into(), "#".into()]
    }

    #[test]
    fn commands_are_recognised_with_either_prefix() {
        let inv = command_line("!Ping now", &prefixes()).expect("a command");
        assert_eq!((inv.prefix.as_str(), inv.name.as_str()), ("!", "ping"));
        assert_eq!(inv.args.get(0), Some("now"));
        let inv = command_line("  #weather \"New York\"", &prefixes()).expect("a command");
        assert_eq!(inv.name, "weather");
        assert_eq!(inv.args.get(0), Some("New York"));
    }

    #[test]
    fn plain_chat_is_not_a_command() {
        for text in ["hello !ping", "!", "! ping", "", "   ", "!!"] {
            assert_eq!(command_line(text, &prefixes()), None, "{text:?}");
        }
    }

    #[test]
    fn the_remote_prefix_marks_remote_commands() {
        let prefixes = Prefixes::canonical();
        assert!(prefixes.parse("#weather x").expect("a command").remote);
        assert!(!prefixes.parse("!weather x").expect("a command").remote);
    }

    #[test]
    fn the_longest_prefix_wins() {
        let inv = command_line("!!double", &["!".into(), "!!".into()]).expect("a command");
        assert_eq!((inv.prefix.as_str(), inv.name.as_str()), ("!!", "double"));
    }
}
