//! Text parsers: the command-argument tokenizer (and the router's command recognition), custom-command templates and Twitch IRC lines.

use waddlebot::Args;
use waddlebot::platforms::irc::{IrcMessage, event_from_line, twitch_line};
use waddlebot::template::{MAX_RENDERED_BYTES, Template, Vars};
use waddlebot_router::{Prefixes, command_line};

use crate::kit::{Entropy, ITERATIONS, Target, mutate_text};

const ARG_WORDS: &[&str] = &[
    " ", "  ", "\t", "\"", "“", "”", "„", "'", "@", "!", "\u{a0}", "\u{3000}", "\n", "é", "🦆",
    "\"a b\"", "add", "--",
];

#[test]
fn args() {
    let target = Target::new("args");
    bolero::check!(name = target.name())
        .with_iterations(ITERATIONS)
        .for_each(|input: &[u8]| {
            target.run(input, mutate_text(ARG_WORDS), |bytes| {
                let line = String::from_utf8_lossy(bytes);
                let args = Args::parse(&line);
                assert_eq!(args.raw(), line.trim());
                assert_eq!(args.iter().count(), args.len());
                // Re-reading what was kept gives the same arguments: the tokenizer is stable.
                assert_eq!(Args::parse(args.raw()), args);
                for index in 0..=args.len() + 1 {
                    let rest = args.rest(index);
                    assert!(args.raw().ends_with(rest), "rest({index}) is a tail");
                    let _ = args.rest_unquoted(index);
                    let _ = args.get(index);
                    let skipped = args.skip(index);
                    assert_eq!(skipped.len(), args.len().saturating_sub(index));
                }
                // The router's command recognition on the same line, with the usual prefixes
                // and a community's unusual ones.
                let _ = Prefixes::canonical().parse(&line);
                let prefixes = ["!", "wb ", "é", "🦆🦆"].map(String::from);
                if let Some(invocation) = command_line(&line, &prefixes) {
                    assert!(!invocation.name.is_empty());
                }
            });
        });
}

const TEMPLATE_WORDS: &[&str] = &[
    "{",
    "}",
    "{{",
    "}}",
    "{user}",
    "{touser}",
    "{args}",
    "{all_args}",
    "{arg1}",
    "{arg0}",
    "{arg18446744073709551616}",
    "{arg99999999999999}",
    "{channel}",
    "{platform}",
    "{count}",
    "{random 1-6}",
    "{random -5--1}",
    "{random 9223372036854775807-9223372036854775807}",
    "{random -9223372036854775808-9223372036854775807}",
    "{random 5-1}",
    "{random}",
    "{RANDOM 1-2}",
    "{ user }",
    "{username}",
    "-",
    "é",
    "🦆",
    " ",
];

#[test]
fn templates() {
    let target = Target::new("templates");
    bolero::check!(name = target.name())
        .with_iterations(ITERATIONS)
        .for_each(|input: &[u8]| {
            target.run(input, mutate_text(TEMPLATE_WORDS), |bytes| {
                let source = String::from_utf8_lossy(bytes);
                let template = match Template::parse(&source) {
                    Ok(template) => template,
                    Err(err) => {
                        // The refusal names the problem in text a moderator reads.
                        assert!(!err.to_string().is_empty());
                        return;
                    }
                };
                // Written back, it parses to the same template (the admin API shows it so).
                let written = template.to_string();
                assert_eq!(
                    Template::parse(&written).as_ref(),
                    Ok(&template),
                    "{written:?}"
                );
                // Bounded variables give a bounded answer: each variable adds at most the
                // longest value (or a number), and the whole stops at the render limit.
                let mut entropy = Entropy::new(bytes);
                let mut args: Vec<String> =
                    (0..entropy.below(4)).map(|_| entropy.text(12)).collect();
                if entropy.below(4) == 0 {
                    // A value long enough to reach the cut, in two-byte characters.
                    args.push("é".repeat(2500));
                }
                let args_text = args.join(" ");
                let vars = Vars {
                    user: "alice",
                    args: &args,
                    args_text: &args_text,
                    channel: "pond",
                    platform: "twitch",
                    count: i64::from(entropy.byte()) - 128,
                };
                let longest = [args_text.len(), 20, "alice".len()]
                    .into_iter()
                    .chain(args.iter().map(String::len))
                    .max()
                    .unwrap_or(0);
                let rendered = template.render(&vars);
                let variables = source.matches('{').count();
                assert!(
                    rendered.len() <= MAX_RENDERED_BYTES.min(source.len() + variables * longest),
                    "{} bytes from a {}-byte template",
                    rendered.len(),
                    source.len()
                );
                let limit = entropy.below(64);
                assert!(template.render_within(&vars, limit).len() <= limit);
            });
        });
}

const IRC_WORDS: &[&str] = &[
    "@",
    ";",
    "=",
    "\\",
    "\\s",
    "\\:",
    "\\\\",
    " ",
    ":",
    "!",
    "#",
    "PRIVMSG",
    "USERNOTICE",
    "CLEARCHAT",
    "NOTICE",
    "PING",
    "001",
    "room-id=1",
    "room-id=",
    "msg-id=subgift",
    "msg-id=resub",
    "msg-id=raid",
    "msg-id=submysterygift",
    "msg-id=announcement",
    "bits=100",
    "bits=-1",
    "ban-duration=18446744073709551616",
    "tmi-sent-ts=99999999999999999999",
    "badges=moderator/1,",
    "msg-param-sub-plan=3000",
    "msg-param-months=0",
    "msg-param-viewerCount=x",
    "login=",
    "target-user-id=",
    "\u{1}ACTION ",
    "\u{1}",
    "\r\n",
    "é",
];

#[test]
fn irc_lines() {
    let target = Target::new("irc_lines");
    bolero::check!(name = target.name())
        .with_iterations(ITERATIONS)
        .for_each(|input: &[u8]| {
            target.run(input, mutate_text(IRC_WORDS), |bytes| {
                let line = String::from_utf8_lossy(bytes);
                let Ok(message) = line.parse::<IrcMessage>() else {
                    return;
                };
                let _ = twitch_line(&message);
                let _ = event_from_line(&message);
                // Any parsed line is written back to a line that parses to the same message.
                let written = message.to_string();
                assert_eq!(
                    written.parse::<IrcMessage>().as_ref(),
                    Ok(&message),
                    "{written:?}"
                );
            });
        });
}
