//! Notification templates: minijinja, compiled when policies load, strict about names.
//!
//! Every template of a policy set lives in one environment, keyed by an id handed out
//! at load. A template that names a variable tripline does not provide is an error at
//! load, not an empty string in an operator's inbox.

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::event::{Category, Event};
use crate::notify::AlertStatus;
use crate::yaml::{backticked, suggest, Pos, Reader};

/// The variables every template sees.
pub const VARIABLES: &[&str] = &[
    "policy",
    "description",
    "category",
    "event_id",
    "received_at",
    "source",
    "title",
    "message",
    "content_type",
    "headers",
    "status",
];

/// Names minijinja provides itself, accepted in templates.
const GLOBALS: &[&str] = &[
    "range",
    "dict",
    "namespace",
    "debug",
    "loop",
    "self",
    "super",
];

/// A compiled template's handle in [`Templates`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateId(String);

/// All templates of one policy set.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    next: usize,
}

/// The values a template is rendered with.
#[derive(Debug, Serialize)]
pub struct Context<'a> {
    pub policy: &'a str,
    pub description: &'a str,
    pub category: Category,
    pub event_id: &'a str,
    pub received_at: String,
    pub source: &'a str,
    pub title: &'a str,
    pub message: &'a str,
    pub content_type: Option<&'a str>,
    pub headers: std::collections::BTreeMap<&'a str, &'a str>,
    /// `firing`, or `cleared` for a clear notification.
    pub status: AlertStatus,
}

impl<'a> Context<'a> {
    /// The context for `event` firing `policy`.
    pub fn new(policy: &'a crate::policy::Policy, event: &'a Event) -> Self {
        Context {
            policy: &policy.name,
            description: &policy.description,
            category: policy.category,
            event_id: &event.id,
            received_at: event.received_rfc3339(),
            source: &event.source,
            title: &event.title,
            message: &event.message,
            content_type: event.content_type.as_deref(),
            headers: event
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            status: AlertStatus::Firing,
        }
    }

    /// The same context for a notification of `status`.
    pub fn with_status(mut self, status: AlertStatus) -> Self {
        self.status = status;
        self
    }
}

impl Default for Templates {
    fn default() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        Templates { env, next: 0 }
    }
}

impl Templates {
    /// Compiles `source`, reporting syntax errors and unknown variables at `pos`.
    pub fn add(
        &mut self,
        reader: &mut Reader,
        pos: Pos,
        what: &str,
        source: &str,
    ) -> Option<TemplateId> {
        let id = format!("t{}", self.next);
        self.next += 1;
        if let Err(e) = self.env.add_template_owned(id.clone(), source.to_string()) {
            let detail = e
                .detail()
                .map(str::to_string)
                .unwrap_or_else(|| e.kind().to_string());
            let line = e
                .line()
                .filter(|l| *l > 1)
                .map(|l| format!(" (template line {l})"))
                .unwrap_or_default();
            reader.error(
                pos,
                format!("{what} is not a valid template: {detail}{line}"),
            );
            return None;
        }
        let template = self
            .env
            .get_template(&id)
            .expect("the template was just added");
        let mut unknown: Vec<String> = template
            .undeclared_variables(false)
            .into_iter()
            .filter(|v| !VARIABLES.contains(&v.as_str()) && !GLOBALS.contains(&v.as_str()))
            .collect();
        unknown.sort();
        for name in &unknown {
            let hint = match suggest(name, VARIABLES) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("templates can use {}", backticked(VARIABLES)),
            };
            reader.error(
                pos,
                format!("{what} uses `{name}`, which tripline does not provide; {hint}"),
            );
        }
        unknown.is_empty().then_some(TemplateId(id))
    }

    /// Renders a template. Fails only on errors such as a filter given a wrong type.
    pub fn render(&self, id: &TemplateId, context: &Context<'_>) -> Result<String, String> {
        let template = self.env.get_template(&id.0).map_err(|e| e.to_string())?;
        template.render(context).map_err(|e| match e.detail() {
            Some(detail) => format!("{}: {detail}", e.kind()),
            None => e.kind().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(source: &str) -> Result<(Templates, TemplateId), Vec<String>> {
        let mut reader = Reader::new("p.yaml");
        let mut templates = Templates::default();
        let id = templates.add(&mut reader, Pos { line: 3, col: 7 }, "`subject`", source);
        match id {
            Some(id) => Ok((templates, id)),
            None => Err(reader
                .diagnostics
                .items
                .iter()
                .map(|d| d.to_string())
                .collect()),
        }
    }

    #[test]
    fn renders_event_values() {
        let (templates, id) = add(
            "[{{ category }}] {{ policy }} {{ status }}: {{ message | upper }} from {{ source }}",
        )
        .unwrap();
        let context = Context {
            policy: "deploys",
            description: "",
            category: Category::Critical,
            event_id: "e1",
            received_at: "2026-01-01T00:00:00.000Z".into(),
            source: "ci",
            title: "",
            message: "failed",
            content_type: None,
            headers: Default::default(),
            status: AlertStatus::Cleared,
        };
        assert_eq!(
            templates.render(&id, &context).unwrap(),
            "[critical] deploys cleared: FAILED from ci"
        );
    }

    #[test]
    fn unknown_variables_are_load_errors() {
        let errors = add("{{ mesage }}").unwrap_err();
        assert_eq!(errors, ["p.yaml:3:7: `subject` uses `mesage`, which tripline does not provide; did you mean `message`?"]);
    }

    #[test]
    fn syntax_errors_are_load_errors() {
        let errors = add("{{ message ").unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("p.yaml:3:7: `subject` is not a valid template: "),
            "{errors:?}"
        );
    }
}
