//! Splitting a command line into arguments, the way chat users type them.
//!
//! Whitespace separates arguments; double quotes (straight or curly) group words into one
//! argument. Apostrophes are ordinary characters, so `It's` stays one word, and an unclosed
//! quote runs to the end of the line instead of failing: chat is not a shell.

/// The arguments after a command name, with the raw text kept so a handler can take "the rest of
/// the line" exactly as typed.
///
/// ```
/// use waddlebot::Args;
/// let args = Args::parse(r#"add "Best quote ever" pingu"#);
/// assert_eq!(args.len(), 3);
/// assert_eq!(args.get(1), Some("Best quote ever"));
/// assert_eq!(args.rest(1), r#""Best quote ever" pingu"#);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Args {
    raw: String,
    tokens: Vec<Token>,
}

/// One argument: where it is in the raw text (no copy of its own).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    /// The argument's text in `raw`, quotes removed.
    value: std::ops::Range<usize>,
    /// Byte offset of the token's first character (its quote, if quoted) in `raw`.
    start: usize,
    quoted: bool,
}

impl std::fmt::Debug for Args {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Args")
            .field("raw", &self.raw)
            .field("args", &self.iter().collect::<Vec<_>>())
            .finish()
    }
}

fn is_open_quote(c: char) -> bool {
    matches!(c, '"' | '“' | '„')
}

fn is_close_quote(c: char) -> bool {
    matches!(c, '"' | '”' | '“')
}

impl Args {
    /// Splits `raw` into arguments.
    pub fn parse(raw: &str) -> Self {
        let raw = raw.trim().to_owned();
        let mut tokens = Vec::new();
        let mut chars = raw.char_indices().peekable();
        while let Some((start, c)) = chars.next() {
            if c.is_whitespace() {
                continue;
            }
            let quoted = is_open_quote(c);
            // Up to the closing quote (or the end: an unclosed quote runs on), or up to the
            // next whitespace.
            let mut end = raw.len();
            let value = if quoted {
                for (at, c) in chars.by_ref() {
                    if is_close_quote(c) {
                        end = at;
                        break;
                    }
                }
                start + c.len_utf8()..end
            } else {
                while let Some(&(at, c)) = chars.peek() {
                    if c.is_whitespace() {
                        end = at;
                        break;
                    }
                    chars.next();
                }
                start..end
            };
            tokens.push(Token {
                value,
                start,
                quoted,
            });
        }
        Self { raw, tokens }
    }

    /// How many arguments there are.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The `index`-th argument (0-based), quotes removed.
    pub fn get(&self, index: usize) -> Option<&str> {
        self.tokens.get(index).map(|token| self.text(token))
    }

    /// All arguments, quotes removed.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.tokens.iter().map(|token| self.text(token))
    }

    /// All arguments as owned strings.
    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_owned).collect()
    }

    /// The text as typed (trimmed).
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The raw text from the `index`-th argument to the end, exactly as typed ("" past the end).
    pub fn rest(&self, index: usize) -> &str {
        self.tokens
            .get(index)
            .map_or("", |token| &self.raw[token.start..])
    }

    /// Like [`rest`](Self::rest), but when the rest is one quoted argument its quotes are
    /// removed: `!command add hi "Hello there"` gives `Hello there`.
    pub fn rest_unquoted(&self, index: usize) -> &str {
        match self.tokens.get(index..) {
            Some([only]) if only.quoted => self.text(only),
            _ => self.rest(index),
        }
    }

    fn text(&self, token: &Token) -> &str {
        &self.raw[token.value.clone()]
    }

    /// The arguments after the first `n`, as a new `Args` (for sub-commands).
    pub fn skip(&self, n: usize) -> Args {
        Args::parse(self.rest(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_group_and_apostrophes_do_not() {
        let args = Args::parse(r#"  it's "a b"   c “curly quotes” "#);
        assert_eq!(
            args.to_vec(),
            ["it's", "a b", "c", "curly quotes"].map(String::from)
        );
    }

    #[test]
    fn an_unclosed_quote_runs_to_the_end() {
        assert_eq!(
            Args::parse(r#"say "hello world"#).to_vec(),
            ["say", "hello world"].map(String::from)
        );
    }

    #[test]
    fn rest_keeps_the_original_spacing() {
        let args = Args::parse("add !hello Hi   {user}!");
        assert_eq!(args.rest(2), "Hi   {user}!");
        assert_eq!(args.rest(9), "");
        assert_eq!(args.skip(1).get(0), Some("!hello"));
    }

    #[test]
    fn rest_unquoted_strips_only_a_single_quoted_argument() {
        assert_eq!(
            Args::parse(r#"add hi "Hello there""#).rest_unquoted(2),
            "Hello there"
        );
        assert_eq!(
            Args::parse(r#"add hi "Hello" there"#).rest_unquoted(2),
            r#""Hello" there"#
        );
    }

    /// The splitting rules written the plain way, one character at a time.
    fn split_plainly(raw: &str) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        let mut chars = raw.trim().chars().peekable();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                chars.next();
                continue;
            }
            let mut value = String::new();
            let quoted = is_open_quote(c);
            if quoted {
                chars.next();
                for c in chars.by_ref() {
                    if is_close_quote(c) {
                        break;
                    }
                    value.push(c);
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
            out.push((value, quoted));
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn arguments_are_what_the_plain_rules_give(text in "[ a\"“”„'\t]{0,12}|\\PC{0,40}") {
            let args = Args::parse(&text);
            let plain = split_plainly(&text);
            let values: Vec<(String, bool)> = args
                .tokens
                .iter()
                .map(|token| (args.text(token).to_owned(), token.quoted))
                .collect();
            proptest::prop_assert_eq!(values, plain);
        }

        #[test]
        fn parsing_any_text_never_panics_and_rest_is_a_suffix(text in "\\PC{0,80}", index in 0usize..6) {
            let args = Args::parse(&text);
            proptest::prop_assert!(args.raw().ends_with(args.rest(index)));
            let _ = args.rest_unquoted(index);
        }
    }
}
