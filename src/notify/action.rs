//! Actions: the entries of a policy's `notify:` list, read from YAML with located
//! errors, and rendered into a [`Message`] when the policy fires or clears.
//!
//! An entry names exactly one channel and may add the options every channel shares:
//!
//! ```yaml
//! notify:
//!   - email: {to: [oncall@example.com]}
//!     renotify: 30m          # or `never`; without it every matching event notifies
//!     group_by: [source]     # one incident per group key
//!     on_clear: true         # also notify when the incident clears
//! ```

use std::time::Duration;

use super::{duration, email, log, pagerduty, slack, webhook, EnvText, Message};
use crate::template::{Context, TemplateId, Templates};
use crate::yaml::{backticked, Kind, Node, Pos, Reader};

/// The channels an action can name.
pub const CHANNELS: &[&str] = &["email", "webhook", "slack", "pagerduty", "log"];

const SHARED_KEYS: &[&str] = &["renotify", "group_by", "on_clear"];

/// One entry of a policy's `notify:` list.
#[derive(Debug)]
pub struct Action {
    pub channel: Channel,
    pub renotify: Renotify,
    /// The event values whose combination names an incident; empty means one incident
    /// for the whole policy.
    pub group_by: Vec<String>,
    /// Whether the end of an incident is notified too.
    pub on_clear: bool,
    /// Where `on_clear: true` is written, to point at it when nothing can clear.
    pub on_clear_pos: Option<Pos>,
}

/// How often an open incident notifies again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Renotify {
    /// Every matching event notifies (the default).
    Always,
    /// Only the event that opens an incident notifies.
    Never,
    /// At most once per interval while the incident is open.
    Every(Duration),
}

/// Where a notification goes and what it says, as templates.
#[derive(Debug)]
pub enum Channel {
    Email(email::EmailAction),
    Webhook(webhook::WebhookAction),
    Slack(slack::SlackAction),
    Pagerduty(pagerduty::PagerDutyAction),
    Log(log::LogAction),
}

/// What rendering needs: the policy set's templates, the values, the incident's group.
pub struct Render<'a> {
    pub templates: &'a Templates,
    pub context: &'a Context<'a>,
    /// The group key's values in `group_by` order.
    pub group: &'a [String],
}

impl Render<'_> {
    /// Renders a template with the context.
    pub fn text(&self, id: &TemplateId) -> Result<String, String> {
        self.templates.render(id, self.context)
    }
}

impl Action {
    /// Renders the action's message, or says which template failed.
    pub fn render(&self, r: &Render<'_>) -> Result<Message, String> {
        match &self.channel {
            Channel::Email(a) => a.render(r).map(Message::Email),
            Channel::Webhook(a) => a.render(r).map(Message::Webhook),
            Channel::Slack(a) => a.render(r).map(Message::Slack),
            Channel::Pagerduty(a) => a.render(r).map(Message::Pagerduty),
            Channel::Log(a) => a.render(r).map(Message::Log),
        }
    }

    /// The channel's name.
    pub fn channel_name(&self) -> &'static str {
        match &self.channel {
            Channel::Email(_) => "email",
            Channel::Webhook(_) => "webhook",
            Channel::Slack(_) => "slack",
            Channel::Pagerduty(_) => "pagerduty",
            Channel::Log(_) => "log",
        }
    }
}

/// Reads a `notify:` list; `None` when any entry has a mistake (all are reported).
pub fn read_list(
    reader: &mut Reader,
    templates: &mut Templates,
    node: &Node,
) -> Option<Vec<Action>> {
    let items = reader.seq(node, "`notify`")?;
    let mut cx = ActionReader { reader, templates };
    let actions: Vec<Option<Action>> = items.iter().map(|n| cx.action(n)).collect();
    actions.into_iter().collect()
}

/// The reader and template set, with the helpers channel readers share.
pub struct ActionReader<'a> {
    pub reader: &'a mut Reader,
    pub templates: &'a mut Templates,
}

impl ActionReader<'_> {
    fn action(&mut self, node: &Node) -> Option<Action> {
        let mut map = self.reader.map(node, "an action")?;
        let mut named: Vec<(&str, &Node)> = CHANNELS
            .iter()
            .filter_map(|c| map.take(c).map(|n| (*c, n)))
            .collect();
        named.sort_by_key(|(_, n)| (n.pos.line, n.pos.col));
        let renotify = map.take("renotify").map(|n| self.renotify(n));
        let group_by = map.take("group_by").map(|n| self.group_by(n));
        let on_clear_node = map.take("on_clear");
        let on_clear = on_clear_node.map(|n| self.reader.bool(n, "`on_clear`"));
        let known: Vec<&str> = CHANNELS.iter().chain(SHARED_KEYS).copied().collect();
        self.reader.finish(map, &known, "an action");

        let channel = match named.as_slice() {
            [(name, n)] => self.channel(name, n),
            [] => {
                let message = format!(
                    "this action names no channel; use one of {}",
                    backticked(CHANNELS)
                );
                self.reader.error(node.pos, message);
                None
            }
            [_, (second, n), ..] => {
                let message = format!("an action names one channel; `{second}` starts a second one, so give it its own `-` entry");
                self.reader.error(n.pos, message);
                None
            }
        };
        let channel = channel?;
        let default_on_clear = matches!(channel, Channel::Pagerduty(_));
        Some(Action {
            channel,
            renotify: renotify.unwrap_or(Some(Renotify::Always))?,
            group_by: group_by.unwrap_or(Some(Vec::new()))?,
            on_clear: on_clear.unwrap_or(Some(default_on_clear))?,
            on_clear_pos: on_clear_node.map(|n| n.pos),
        })
    }

    fn channel(&mut self, name: &str, node: &Node) -> Option<Channel> {
        match name {
            "email" => email::read(self, node).map(Channel::Email),
            "webhook" => webhook::read(self, node).map(Channel::Webhook),
            "slack" => slack::read(self, node).map(Channel::Slack),
            "pagerduty" => pagerduty::read(self, node).map(Channel::Pagerduty),
            _ => log::read(self, node).map(Channel::Log),
        }
    }

    fn renotify(&mut self, node: &Node) -> Option<Renotify> {
        if matches!(&node.kind, Kind::Str(s) if s == "never") {
            return Some(Renotify::Never);
        }
        let interval = duration::read(self.reader, node, "`renotify` (a duration or `never`)")?;
        if interval.is_zero() {
            self.reader.error(
                node.pos,
                "`renotify` must be longer than zero; omit it to notify on every event",
            );
            return None;
        }
        Some(Renotify::Every(interval))
    }

    fn group_by(&mut self, node: &Node) -> Option<Vec<String>> {
        let names = self.reader.str_list(node, "`group_by`")?;
        let mut ok = true;
        for (name, pos) in &names {
            if let Err(message) = super::incident::check_group_field(name, self.templates.fields())
            {
                self.reader.error(*pos, message);
                ok = false;
            }
        }
        ok.then(|| names.into_iter().map(|(n, _)| n).collect())
    }

    /// Compiles the template at `node`.
    pub fn template(&mut self, node: &Node, what: &str) -> Option<TemplateId> {
        let source = self.reader.str(node, what)?;
        self.templates.add(self.reader, node.pos, what, source)
    }

    /// Compiles the template at `node`, or `default` when the key is absent.
    pub fn template_or(
        &mut self,
        node: Option<&Node>,
        pos: Pos,
        what: &str,
        default: &str,
    ) -> Option<TemplateId> {
        match node {
            Some(node) => self.template(node, what),
            None => self.templates.add(self.reader, pos, what, default),
        }
    }

    /// Reads a text that may hold `${NAME}`; each variable must be set now, so a
    /// missing secret is found when policies load rather than when an alert is due.
    pub fn env_text(&mut self, node: &Node, what: &str) -> Option<(EnvText, String)> {
        let raw = self.reader.str(node, what)?;
        let text = EnvText::new(raw);
        match text.resolve() {
            Ok(value) => Some((text, value)),
            Err(message) => {
                self.reader.error(node.pos, format!("{what}: {message}"));
                None
            }
        }
    }

    /// Reads an `http://` or `https://` URL, which may come from the environment.
    pub fn url(&mut self, node: &Node, what: &str) -> Option<EnvText> {
        let (text, value) = self.env_text(node, what)?;
        match reqwest::Url::parse(&value) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Some(text),
            _ => {
                let shown = if text.raw() == value {
                    value.as_str()
                } else {
                    text.raw()
                };
                self.reader.error(
                    node.pos,
                    format!("{what} must be an `http://` or `https://` URL, found `{shown}`"),
                );
                None
            }
        }
    }

    /// Reads a `timeout:` duration, defaulting to [`super::http::DEFAULT_TIMEOUT`].
    pub fn timeout(&mut self, node: Option<&Node>) -> Option<Duration> {
        match node {
            Some(n) => duration::read(self.reader, n, "`timeout`"),
            None => Some(super::http::DEFAULT_TIMEOUT),
        }
    }

    /// Reads a mapping of header names to value templates.
    pub fn headers(
        &mut self,
        node: &Node,
        what: &str,
        reserved: &[&str],
    ) -> Option<Vec<(String, TemplateId)>> {
        let map = self.reader.map(node, what)?;
        let mut out = Vec::new();
        let mut ok = true;
        for (key, value) in map.entries() {
            let name = key.name.as_str();
            let valid = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
            if !valid {
                self.reader.error(
                    key.pos,
                    format!("`{name}` is not a valid header name; use letters, digits and `-`"),
                );
                ok = false;
            } else if reserved.iter().any(|r| r.eq_ignore_ascii_case(name)) {
                self.reader.error(
                    key.pos,
                    format!(
                        "header `{name}` is set by tripline and cannot be overridden in {what}"
                    ),
                );
                ok = false;
            } else if let Some(id) = self.template(value, &format!("header `{name}`")) {
                out.push((name.to_string(), id));
            } else {
                ok = false;
            }
        }
        ok.then_some(out)
    }
}

/// Reports `on_clear: true` on a policy that nothing can clear.
pub fn check_on_clear(reader: &mut Reader, actions: &[Action], can_clear: bool) {
    if can_clear {
        return;
    }
    for action in actions.iter().filter(|a| a.on_clear) {
        if let Some(pos) = action.on_clear_pos {
            let message = "`on_clear` has no effect: the policy has neither `clear:` conditions nor `resolve_after`";
            reader.error(pos, message);
        }
    }
}

/// An optional key as read: absent is fine (`Some(None)`), present but wrong is a
/// mistake (`None`), present and right is its value.
pub fn optional<T>(read: Option<Option<T>>) -> Option<Option<T>> {
    match read {
        None => Some(None),
        Some(value) => value.map(Some),
    }
}

/// Renders `(name, template)` headers.
pub fn render_headers(
    r: &Render<'_>,
    headers: &[(String, TemplateId)],
) -> Result<Vec<(String, String)>, String> {
    headers
        .iter()
        .map(|(name, id)| {
            let value = r.text(id).map_err(|e| format!("header `{name}`: {e}"))?;
            Ok((name.clone(), one_line(&value)))
        })
        .collect()
}

/// Header values and subjects must be one line; a template may have produced several.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<Action>, Vec<String>> {
        let mut reader = Reader::new("p.yaml");
        let mut templates = Templates::default();
        let node = reader.parse(text).unwrap();
        let actions = read_list(&mut reader, &mut templates, &node);
        match actions {
            Some(a) if reader.diagnostics.is_empty() => Ok(a),
            _ => Err(reader
                .diagnostics
                .items
                .iter()
                .map(|d| d.to_string())
                .collect()),
        }
    }

    #[test]
    fn shared_options_are_read() {
        let actions = read("- log: {}\n  renotify: 30m\n  group_by: [source, header.x-host]\n  on_clear: true\n- log: {}\n  renotify: never\n- pagerduty: {routing_key: abc}\n").unwrap();
        assert_eq!(
            actions[0].renotify,
            Renotify::Every(Duration::from_secs(1800))
        );
        assert_eq!(actions[0].group_by, ["source", "header.x-host"]);
        assert!(actions[0].on_clear);
        assert_eq!(
            (actions[1].renotify, actions[1].on_clear),
            (Renotify::Never, false)
        );
        assert_eq!(
            (actions[2].renotify, actions[2].on_clear),
            (Renotify::Always, true)
        );
    }

    #[test]
    fn mistakes_are_located() {
        let cases: &[(&str, &str)] = &[
            ("- {}\n", "p.yaml:1:3: this action names no channel; use one of `email`, `webhook`, `slack`, `pagerduty`, `log`"),
            ("- log: {}\n  slack: {url: 'https://x'}\n", "p.yaml:2:10: an action names one channel; `slack` starts a second one, so give it its own `-` entry"),
            ("- log: {}\n  renotfy: 5m\n", "p.yaml:2:3: unknown key `renotfy` in an action; did you mean `renotify`?"),
            ("- log: {}\n  renotify: soon\n", "p.yaml:2:13: `renotify` (a duration or `never`) must be a duration such as `30s`, `5m`, `2h` or `1d`, found `soon`"),
            ("- log: {}\n  renotify: 0s\n", "p.yaml:2:13: `renotify` must be longer than zero; omit it to notify on every event"),
            ("- log: {}\n  group_by: [sorce]\n", "p.yaml:2:14: `group_by` cannot use `sorce`; did you mean `source`?"),
            ("- log: {}\n  on_clear: yes\n", "p.yaml:2:13: `on_clear` must be `true` or `false`, found the text `yes`"),
        ];
        for (text, want) in cases {
            assert_eq!(read(text).unwrap_err(), [*want], "{text}");
        }
    }

    /// Renders the single action in `yaml` for a firing or clearing event.
    fn render(yaml: &str, status: crate::notify::AlertStatus) -> Result<Message, String> {
        let mut reader = Reader::new("p.yaml");
        let mut templates = Templates::default();
        let node = reader.parse(yaml).unwrap();
        let actions = read_list(&mut reader, &mut templates, &node).unwrap();
        let policy = crate::policy::Policy {
            name: "disk".into(),
            description: String::new(),
            category: crate::event::Category::Critical,
            sources: None,
            enabled: true,
            condition: crate::condition::Condition::All(Vec::new()),
            actions: Vec::new(),
            clear: None,
            resolve_after: None,
            extractors: Vec::new(),
            fixtures: Vec::new(),
            file: "p.yaml".into(),
        };
        let event = crate::notify::test_send::sample_event(&policy);
        let context = Context::new(&policy, &event, Default::default()).with_status(status);
        let group = vec!["web-1".to_string()];
        let r = Render {
            templates: &templates,
            context: &context,
            group: &group,
        };
        actions[0].render(&r)
    }

    #[test]
    fn render_table() {
        use crate::notify::AlertStatus::{Cleared, Firing};
        let cases: &[(&str, crate::notify::AlertStatus, Result<&str, &str>)] = &[
            (
                "- email: {to: '{{ title }}'}",
                Firing,
                Err("`to` rendered `tripline notify-test`, which is not an email address"),
            ),
            (
                "- email: {to: a@b.c, subject: '{{ status }}'}",
                Cleared,
                Ok(r#""subject":"cleared""#),
            ),
            (
                "- webhook: {url: 'http://x', body: '{{ policy }}'}",
                Firing,
                Err("`body` did not render valid JSON: expected value at line 1 column 1"),
            ),
            (
                "- webhook: {url: 'http://x', body: '{{ {\"p\": policy} | tojson }}'}",
                Firing,
                Ok(r#""body":"{\"p\":\"disk\"}""#),
            ),
            (
                "- slack: {url: 'http://x', blocks: '{}'}",
                Firing,
                Err("`blocks` must render a JSON list"),
            ),
            (
                "- pagerduty: {routing_key: k}",
                Firing,
                Ok(r#""event_action":"trigger","dedup_key":"tripline/disk/web-1""#),
            ),
            (
                "- pagerduty: {routing_key: k}",
                Cleared,
                Ok(r#""event_action":"resolve","dedup_key":"tripline/disk/web-1","payload":null"#),
            ),
            (
                "- log: {message: '{{ message | int }}'}",
                Firing,
                Err("`message`: "),
            ),
        ];
        for (yaml, status, want) in cases {
            let got = render(yaml, *status).map(|m| serde_json::to_string(&m).unwrap());
            match (got, want) {
                (Ok(json), Ok(part)) => assert!(json.contains(part), "{yaml}: {json}"),
                (Err(e), Err(start)) => assert!(e.starts_with(start), "{yaml}: {e}"),
                (got, _) => panic!("{yaml}: {got:?}"),
            }
        }
    }

    #[test]
    fn header_names_are_checked() {
        let mut reader = Reader::new("p.yaml");
        let mut templates = Templates::default();
        let node = reader
            .parse("{X-Team: ops, 'bad name': x, Content-Type: y}")
            .unwrap();
        let mut cx = ActionReader {
            reader: &mut reader,
            templates: &mut templates,
        };
        assert!(cx.headers(&node, "`headers`", &["content-type"]).is_none());
        let got: Vec<String> = reader
            .diagnostics
            .items
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(
            got,
            [
                "p.yaml:1:15: `bad name` is not a valid header name; use letters, digits and `-`",
                "p.yaml:1:30: header `Content-Type` is set by tripline and cannot be overridden in `headers`",
            ]
        );
    }
}
