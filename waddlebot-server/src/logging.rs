//! Log output: the original system's AAA line format for `tracing-subscriber`.
//!
//! ```text
//! [2026-11-26T10:00:00.123456Z] INFO waddlebot_server:0.1.0 AUDIT community=1 user=key:ab12 (ops) action=command.create result=success time=-ms target=hello msg="admin change"
//! ```
//!
//! `TYPE` is the event's `category` field (`auth`, `authz`, `audit`, `system`; `system` when
//! absent); `user` is its `actor` or `user` field; `action` its `action` field; `time` its
//! `time_ms` field. Other fields follow as `key=value`, then the message. Use it with
//! `tracing_subscriber::fmt().event_format(AaaFormat)`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The AAA line format.
#[derive(Debug, Clone, Copy, Default)]
pub struct AaaFormat;

#[derive(Default)]
struct Fields(BTreeMap<&'static str, String>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }
}

/// A value as one token: quoted when it has spaces, quotes or `=`.
fn token(value: &str) -> String {
    if value.is_empty() || value.contains([' ', '"', '=', '\n']) {
        format!("{value:?}")
    } else {
        value.to_owned()
    }
}

impl<S, N> FormatEvent<S, N> for AaaFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        // The request's span (request id, route) counts as the event's own fields.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                if let Some(stored) = span
                    .extensions()
                    .get::<tracing_subscriber::fmt::FormattedFields<N>>()
                    && !stored.is_empty()
                {
                    fields.0.entry("span").or_insert_with(|| stored.to_string());
                }
            }
        }
        let mut take = |name: &str| fields.0.remove(name);
        let message = take("message").unwrap_or_default();
        let category = take("category").unwrap_or_else(|| "system".to_owned());
        let community = take("community").unwrap_or_else(|| "-".to_owned());
        let user = take("actor")
            .or_else(|| take("user"))
            .unwrap_or_else(|| "-".to_owned());
        let action = take("action").unwrap_or_else(|| "-".to_owned());
        let result = take("result").unwrap_or_else(|| "-".to_owned());
        let time = take("time_ms").unwrap_or_else(|| "-".to_owned());
        let metadata = event.metadata();
        let module = metadata.target().split("::").next().unwrap_or("waddlebot");
        writer.write_char('[')?;
        SystemTime.format_time(&mut writer)?;
        write!(
            writer,
            "] {} {module}:{} {} community={} user={} action={} result={} time={}ms",
            metadata.level(),
            env!("CARGO_PKG_VERSION"),
            category.to_ascii_uppercase(),
            token(&community),
            token(&user),
            token(&action),
            token(&result),
            token(&time),
        )?;
        let mut rest = String::new();
        for (key, value) in &fields.0 {
            let _ = write!(rest, " {key}={}", token(value));
        }
        writer.write_str(&rest)?;
        if !message.is_empty() {
            write!(writer, " msg={}", token(&message))?;
        }
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_audit_event_becomes_one_aaa_line() {
        let buffer = Buffer::default();
        let out = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(AaaFormat)
            .with_writer(move || out.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                category = "audit",
                actor = "key:ab12 (ops)",
                community = 7,
                action = "command.create",
                result = "success",
                time_ms = 3,
                target = "hello",
                "admin change"
            );
            tracing::warn!("plain system line");
        });
        let text = String::from_utf8(buffer.0.lock().expect("lock").clone()).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let (stamp, rest) = lines[0].split_once("] ").expect("timestamp");
        assert!(stamp.starts_with("[20"), "{stamp}");
        assert_eq!(
            rest,
            format!(
                "INFO waddlebot_server:{} AUDIT community=7 user=\"key:ab12 (ops)\" action=command.create result=success time=3ms target=hello msg=\"admin change\"",
                env!("CARGO_PKG_VERSION")
            )
        );
        let plain = format!(
            "WARN waddlebot_server:{} SYSTEM community=- user=- action=- result=- time=-ms msg=\"plain system line\"",
            env!("CARGO_PKG_VERSION")
        );
        assert!(lines[1].ends_with(&plain), "{}", lines[1]);
    }
}
