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
    "query",
    "fields",
    "json",
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
    /// The extracted names the policy being read can produce; `None` when any name
    /// may appear (an extractor such as `kv: {}` without `keys`).
    fields: Option<Vec<String>>,
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
    pub query: std::collections::BTreeMap<&'a str, &'a str>,
    /// The policy's extracted fields.
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// The JSON body, when there is one.
    pub json: Option<&'a serde_json::Value>,
    /// `firing`, or `cleared` for a clear notification.
    pub status: AlertStatus,
}

impl<'a> Context<'a> {
    /// The context for `event` firing `policy`, with the fields its extractors found.
    pub fn new(
        policy: &'a crate::policy::Policy,
        event: &'a Event,
        fields: serde_json::Map<String, serde_json::Value>,
    ) -> Self {
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
            query: event
                .query
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            fields,
            json: event.json.as_ref(),
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
        Templates {
            env,
            next: 0,
            fields: Some(Vec::new()),
        }
    }
}

impl Templates {
    /// Sets which extracted fields the templates added next may use.
    pub fn set_fields(&mut self, names: &crate::field::Names<'_>) {
        let mut fields = Some(Vec::new());
        for (_, extractor) in &names.extractors {
            match (extractor.names(), fields.as_mut()) {
                (Some(produced), Some(list)) => list.extend(produced),
                _ => fields = None,
            }
        }
        self.fields = fields;
    }

    /// The extracted names the policy being read can produce; `None` when any may appear.
    pub fn fields(&self) -> Option<&[String]> {
        self.fields.as_deref()
    }

    /// Reports `fields.NAME` uses that no extractor of the policy produces.
    fn check_fields(
        &self,
        reader: &mut Reader,
        pos: Pos,
        what: &str,
        template: &minijinja::Template<'_, '_>,
    ) -> bool {
        let Some(known) = &self.fields else {
            return true;
        };
        let mut used: Vec<String> = template
            .undeclared_variables(true)
            .into_iter()
            .filter_map(|v| {
                v.strip_prefix("fields.")
                    .map(|f| f.split('.').next().unwrap_or(f).to_string())
            })
            .filter(|f| !known.contains(f))
            .collect();
        used.sort();
        used.dedup();
        let names: Vec<&str> = known.iter().map(String::as_str).collect();
        for field in &used {
            let hint = match suggest(field, &names) {
                Some(s) => format!("did you mean `fields.{s}`?"),
                None if names.is_empty() => {
                    "the policy has no `extract:` that produces it".to_string()
                }
                None => format!("its extractors produce {}", backticked(&names)),
            };
            let message = format!(
                "{what} uses `fields.{field}`, which no extractor of this policy produces; {hint}"
            );
            reader.error(pos, message);
        }
        used.is_empty()
    }

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
        let fields_ok = self.check_fields(reader, pos, what, &template);
        (unknown.is_empty() && fields_ok).then_some(TemplateId(id))
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
            query: Default::default(),
            fields: Default::default(),
            json: None,
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
