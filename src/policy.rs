//! Policies: which events matter and whom to tell, read from YAML files and compiled
//! into an immutable [`PolicySet`].
//!
//! A file holds one policy, or several under a top-level `policies:` list. Loading reads
//! every file and reports every mistake in all of them before giving up, so an author
//! fixes a directory in one pass.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::condition::{Condition, ConditionReader};
use crate::event::Category;
use crate::extract::{self, Extractor};
use crate::field::Names;
use crate::fixture::{self, Fixture};
use crate::notify::action::optional;
use crate::template::Templates;
use crate::yaml::{Diagnostics, Kind, Node, Pos, Reader};

const POLICY_KEYS: &[&str] = &[
    "name",
    "description",
    "category",
    "sources",
    "enabled",
    "extract",
    "match",
    "conditions",
    "notify",
    "tests",
    "clear",
    "resolve_after",
];

/// A compiled policy.
#[derive(Debug)]
pub struct Policy {
    pub name: String,
    pub description: String,
    pub category: Category,
    /// The sources whose events it sees; `None` means every source.
    pub sources: Option<Vec<String>>,
    pub enabled: bool,
    /// The extractors it runs, as indexes into [`PolicySet::extractors`], in order.
    pub extractors: Vec<usize>,
    /// The top-level conditions joined by `match: all | any`.
    pub condition: Condition,
    pub actions: Vec<Action>,
    /// Fixture tests kept with the policy (`tests:`).
    pub fixtures: Vec<Fixture>,
    /// Conditions (all must hold) under which a later event resolves the open incident.
    pub clear: Option<Condition>,
    /// An open incident with no matching event for this long is resolved.
    pub resolve_after: Option<Duration>,
    /// The file the policy came from, for messages.
    pub file: Arc<str>,
}

pub use crate::notify::action::Action;

/// Every loaded policy with its templates; immutable once built.
#[derive(Debug, Default)]
pub struct PolicySet {
    pub policies: Vec<Policy>,
    pub templates: Templates,
    /// Every distinct extractor of every policy; policies share identical ones.
    pub extractors: Vec<Extractor>,
    /// The files read, in order, with their text.
    pub files: Vec<PathBuf>,
    /// The text of each file, in the order of `files`, to keep past versions.
    pub texts: Vec<String>,
    /// A digest of every file's path and text: equal versions evaluate alike.
    pub version: String,
    /// Which policies may match a message, found without evaluating them all.
    pub index: crate::index::Index,
}

impl PolicySet {
    /// Loads every `*.yaml` and `*.yml` file under `dir`, or the files given.
    pub fn load(paths: &[PathBuf], known_sources: Option<&[String]>) -> Result<Self, Diagnostics> {
        let mut diagnostics = Diagnostics::default();
        let mut sources = Vec::new();
        for file in collect_files(paths, &mut diagnostics) {
            match std::fs::read_to_string(&file) {
                Ok(text) => sources.push((file, text)),
                Err(e) => {
                    let mut reader = Reader::new(file.display().to_string());
                    reader.error(Pos::default(), format!("cannot read the policy file: {e}"));
                    diagnostics.extend(reader.diagnostics);
                }
            }
        }
        match Self::compile(sources, known_sources) {
            Ok(set) if diagnostics.is_empty() => Ok(set),
            Ok(_) => Err(diagnostics),
            Err(more) => {
                diagnostics.extend(more);
                diagnostics.sort();
                Err(diagnostics)
            }
        }
    }

    /// Compiles policy files given as (path, text), as read from disk or the store.
    pub fn compile(
        files: Vec<(PathBuf, String)>,
        known_sources: Option<&[String]>,
    ) -> Result<Self, Diagnostics> {
        let mut set = PolicySet::default();
        let mut diagnostics = Diagnostics::default();
        let mut registry = Registry::default();
        let mut first_seen: Vec<(String, Arc<str>, Pos)> = Vec::new();
        let mut digest = Sha256::new();
        for (file, text) in files {
            let mut reader = Reader::new(file.display().to_string());
            let cx = FileContext {
                templates: &mut set.templates,
                registry: &mut registry,
                known_sources,
            };
            for (name, policy) in read_file(&mut reader, &text, cx) {
                if let Some((name, pos)) = name {
                    check_unique(&mut reader, &mut first_seen, &name, pos);
                }
                set.policies.extend(policy);
            }
            diagnostics.extend(reader.diagnostics);
            digest.update(format!("{}\0{}\0{}\0", file.display(), text.len(), text));
            set.files.push(file);
            set.texts.push(text);
        }
        set.extractors = registry.extractors;
        set.index = crate::index::Index::build(&set.policies, &set.extractors);
        set.version = digest
            .finalize()
            .iter()
            .take(12)
            .map(|b| format!("{b:02x}"))
            .collect();
        if diagnostics.is_empty() {
            Ok(set)
        } else {
            diagnostics.sort();
            Err(diagnostics)
        }
    }

    /// A policy by name.
    pub fn get(&self, name: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.name == name)
    }
}

fn check_unique(
    reader: &mut Reader,
    seen: &mut Vec<(String, Arc<str>, Pos)>,
    name: &str,
    pos: Pos,
) {
    if let Some((_, file, first)) = seen.iter().find(|(n, _, _)| n == name) {
        let message = format!(
            "policy name `{name}` is already used at {file}:{}:{}; names must be unique",
            first.line, first.col
        );
        reader.error(pos, message);
        return;
    }
    seen.push((name.to_string(), reader.path().clone(), pos));
}

/// The policy files named by `paths`: files as given, directories searched for YAML.
fn collect_files(paths: &[PathBuf], diagnostics: &mut Diagnostics) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_file() {
            files.push(path.clone());
            continue;
        }
        match std::fs::read_dir(path) {
            Ok(entries) => {
                let mut found: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_file() && is_yaml(p))
                    .collect();
                found.sort();
                files.extend(found);
            }
            Err(e) => {
                let mut reader = Reader::new(path.display().to_string());
                let message = format!("cannot read the policies directory: {e}");
                reader.error(Pos::default(), message);
                diagnostics.extend(reader.diagnostics);
            }
        }
    }
    files
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

/// A policy's name and where it is written, and the policy when it has no mistakes.
type ReadPolicy = (Option<(String, Pos)>, Option<Policy>);

/// Distinct extractors, so a policy set runs each one once per event.
#[derive(Default)]
struct Registry {
    extractors: Vec<Extractor>,
    ids: std::collections::HashMap<String, usize>,
}

impl Registry {
    /// The id of `extractor`, shared with an identical one registered before.
    fn register(&mut self, extractor: Extractor) -> usize {
        let identity = extractor.identity();
        if let Some(id) = self.ids.get(&identity) {
            return *id;
        }
        self.extractors.push(extractor);
        self.ids.insert(identity, self.extractors.len() - 1);
        self.extractors.len() - 1
    }
}

/// What reading a file shares with the rest of the set.
struct FileContext<'a> {
    templates: &'a mut Templates,
    registry: &'a mut Registry,
    known_sources: Option<&'a [String]>,
}

/// Reads the policies of one file.
fn read_file(reader: &mut Reader, text: &str, cx: FileContext<'_>) -> Vec<ReadPolicy> {
    let Some(root) = reader.parse(text) else {
        return Vec::new();
    };
    let nodes: Vec<&Node> = match &root.kind {
        Kind::Map(entries) if entries.iter().any(|(k, _)| k.name == "policies") => {
            let mut map = reader
                .map(&root, "the file")
                .expect("checked to be a mapping");
            let list = map.take("policies").expect("checked to be present");
            reader.finish(map, &["policies"], "a file with a `policies:` list");
            reader
                .seq(list, "`policies`")
                .map(|items| items.iter().collect())
                .unwrap_or_default()
        }
        Kind::Null => {
            reader.error(
                Pos { line: 1, col: 1 },
                "the file is empty; write a policy or remove it",
            );
            Vec::new()
        }
        _ => vec![&root],
    };
    let mut out = Vec::new();
    for node in nodes {
        let mut policy_reader = PolicyReader {
            reader,
            templates: &mut *cx.templates,
            registry: &mut *cx.registry,
            known_sources: cx.known_sources,
        };
        out.push(policy_reader.policy(node));
    }
    out
}

struct PolicyReader<'a> {
    reader: &'a mut Reader,
    templates: &'a mut Templates,
    registry: &'a mut Registry,
    known_sources: Option<&'a [String]>,
}

impl PolicyReader<'_> {
    fn policy(&mut self, node: &Node) -> ReadPolicy {
        let Some(mut map) = self.reader.map(node, "a policy") else {
            return (None, None);
        };
        let name = match map.take("name") {
            Some(n) => self.name(n),
            None => {
                self.reader.error(map.pos, "this policy needs a `name`");
                None
            }
        };
        let description = map
            .take("description")
            .and_then(|n| self.reader.scalar_text(n, "`description`"));
        let category = match map.take("category") {
            Some(n) => self.category(n),
            None => Some(Category::Warning),
        };
        let sources = map.take("sources").map(|n| self.sources(n));
        let enabled = match map.take("enabled") {
            Some(n) => self.reader.bool(n, "`enabled`"),
            None => Some(true),
        };
        let any = match map.take("match") {
            Some(n) => self.match_mode(n),
            None => Some(false),
        };
        let extractors = match map.take("extract") {
            Some(n) => self.extractors(n),
            None => Some(Vec::new()),
        };
        let ids = extractors.clone().unwrap_or_default();
        let names = Names {
            extractors: ids
                .iter()
                .map(|id| (*id, &self.registry.extractors[*id]))
                .collect(),
        };
        self.templates.set_fields(&names);
        let conditions = match map.take("conditions") {
            Some(n) => {
                let mut cx = ConditionReader {
                    reader: self.reader,
                    names: &names,
                };
                cx.list(n, "`conditions`")
            }
            None => {
                self.reader.error(
                    map.pos,
                    "this policy needs `conditions`; without them it would match every event",
                );
                None
            }
        };
        let actions = match map.take("notify") {
            Some(n) => crate::notify::action::read_list(self.reader, self.templates, n),
            None => Some(Vec::new()),
        };
        let fixtures = match map.take("tests") {
            Some(n) => fixture::read_list(self.reader, n),
            None => Some(Vec::new()),
        };
        let clear = map.take("clear").map(|n| {
            let mut cx = ConditionReader {
                reader: self.reader,
                names: &names,
            };
            cx.list(n, "`clear`").map(Condition::All)
        });
        let resolve_after = map
            .take("resolve_after")
            .map(|n| crate::notify::duration::read(self.reader, n, "`resolve_after`"));
        if let Some(actions) = &actions {
            let can_clear = clear.is_some() || resolve_after.is_some();
            crate::notify::action::check_on_clear(self.reader, actions, can_clear);
        }
        self.reader.finish(map, POLICY_KEYS, "a policy");
        let policy = (|| {
            Some(Policy {
                name: name.clone()?.0,
                description: description.unwrap_or_default(),
                category: category?,
                sources: sources.flatten(),
                enabled: enabled?,
                condition: if any? {
                    Condition::Any(conditions?)
                } else {
                    Condition::All(conditions?)
                },
                actions: actions?,
                extractors: extractors?,
                fixtures: fixtures?,
                clear: optional(clear)?,
                resolve_after: optional(resolve_after)?,
                file: self.reader.path().clone(),
            })
        })();
        (name, policy)
    }
    /// Reads `extract:` and registers each extractor; returns their ids in order.
    fn extractors(&mut self, node: &Node) -> Option<Vec<usize>> {
        let items = self.reader.seq(node, "`extract`")?;
        let read: Vec<Option<Extractor>> = items
            .iter()
            .map(|n| extract::read(self.reader, n))
            .collect();
        let read: Option<Vec<Extractor>> = read.into_iter().collect();
        Some(
            read?
                .into_iter()
                .map(|e| self.registry.register(e))
                .collect(),
        )
    }

    fn name(&mut self, node: &Node) -> Option<(String, Pos)> {
        let name = self.reader.str(node, "`name`")?;
        let valid = !name.is_empty()
            && name.len() <= 128
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !valid {
            let message = format!("policy name `{name}` may hold only letters, digits and `-_.`, up to 128 characters");
            self.reader.error(node.pos, message);
            return None;
        }
        Some((name.to_string(), node.pos))
    }

    fn category(&mut self, node: &Node) -> Option<Category> {
        let text = self.reader.str(node, "`category`")?;
        let category = Category::parse(text);
        if category.is_none() {
            let message =
                format!("`category` must be `info`, `warning` or `critical`, found `{text}`");
            self.reader.error(node.pos, message);
        }
        category
    }

    fn match_mode(&mut self, node: &Node) -> Option<bool> {
        match self.reader.str(node, "`match`")? {
            "all" => Some(false),
            "any" => Some(true),
            other => {
                self.reader.error(
                    node.pos,
                    format!("`match` must be `all` or `any`, found `{other}`"),
                );
                None
            }
        }
    }

    fn sources(&mut self, node: &Node) -> Option<Vec<String>> {
        let list = self.reader.str_list(node, "`sources`")?;
        if let Some(known) = self.known_sources {
            for (name, pos) in &list {
                if !known.contains(name) {
                    let names: Vec<&str> = known.iter().map(String::as_str).collect();
                    let hint = match crate::yaml::suggest(name, &names) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None if names.is_empty() => {
                            "the configuration defines no sources".to_string()
                        }
                        None => format!(
                            "the configuration defines {}",
                            crate::yaml::backticked(&names)
                        ),
                    };
                    self.reader
                        .error(*pos, format!("unknown source `{name}`; {hint}"));
                }
            }
        }
        Some(list.into_iter().map(|(name, _)| name).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn errors(result: Result<PolicySet, Diagnostics>, dir: &Path) -> Vec<String> {
        let prefix = format!("{}/", dir.display());
        result
            .unwrap_err()
            .items
            .iter()
            .map(|d| d.to_string().replace(&prefix, ""))
            .collect()
    }

    const GOOD: &str = "name: deploys\ncategory: critical\nconditions:\n  - {field: message, contains: deploy}\nnotify:\n  - email: {to: ops@example.com, subject: '{{ policy }}'}\n";

    #[test]
    fn loads_single_and_listed_policies() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.yaml", GOOD);
        write(dir.path(), "b.yml", "policies:\n  - name: one\n    conditions: [{field: title, regex: x}]\n  - name: two\n    match: any\n    enabled: false\n    conditions: [{field: title, regex: y}]\n");
        write(dir.path(), "notes.txt", "not a policy");
        let set = PolicySet::load(&[dir.path().to_path_buf()], None).unwrap();
        let names: Vec<&str> = set.policies.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["deploys", "one", "two"]);
        assert_eq!(set.policies[0].category, Category::Critical);
        assert_eq!(set.policies[1].category, Category::Warning);
        assert!(!set.policies[2].enabled);
    }

    #[test]
    fn every_mistake_in_every_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.yaml", GOOD);
        write(dir.path(), "b.yaml", "name: deploys\ncategory: severe\nconditions:\n  - {field: message, regex: '('}\nnotify:\n  - email: {to: 'not an address'}\n");
        write(
            dir.path(),
            "c.yaml",
            "name: empty\nconditions: []\nsources: [gihtub]\n",
        );
        write(dir.path(), "d.yaml", "name: x\n  bad: [\n");
        let known = vec!["github".to_string()];
        let got = errors(
            PolicySet::load(&[dir.path().to_path_buf()], Some(&known)),
            dir.path(),
        );
        assert_eq!(
            got,
            [
                "b.yaml:1:7: policy name `deploys` is already used at a.yaml:1:7; names must be unique",
                "b.yaml:2:11: `category` must be `info`, `warning` or `critical`, found `severe`",
                "b.yaml:4:29: regex `(` does not compile: unclosed group",
                "b.yaml:6:17: `not an address` is not an email address; write `name@example.com` or `Name <name@example.com>`",
                "c.yaml:2:13: `conditions` is empty, so it would match every event; add a condition",
                "c.yaml:3:11: unknown source `gihtub`; did you mean `github`?",
                "d.yaml:2:6: invalid YAML: mapping values are not allowed in this context",
            ]
        );
    }

    #[test]
    fn identical_extractors_are_shared_across_policies() {
        let dir = tempfile::tempdir().unwrap();
        let policy = |name: &str, sep: &str| {
            format!("name: {name}\nextract: [{{kv: {{separator: '{sep}'}}}}, {{json: {{a: $.a}}}}]\nconditions: [{{field: a, exists: true}}]\n")
        };
        write(dir.path(), "a.yaml", &policy("a", ":"));
        write(dir.path(), "b.yaml", &policy("b", ":"));
        write(dir.path(), "c.yaml", &policy("c", "="));
        let set = PolicySet::load(&[dir.path().to_path_buf()], None).unwrap();
        assert_eq!(set.extractors.len(), 3, "kv(:), json and kv(=)");
        assert_eq!(set.policies[0].extractors, set.policies[1].extractors);
        assert_eq!(set.policies[2].extractors, [2, 1]);
    }

    #[test]
    fn the_version_changes_with_the_text() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.yaml", GOOD);
        let first = PolicySet::load(&[dir.path().to_path_buf()], None)
            .unwrap()
            .version;
        let again = PolicySet::load(&[dir.path().to_path_buf()], None)
            .unwrap()
            .version;
        write(dir.path(), "a.yaml", &GOOD.replace("critical", "warning"));
        let changed = PolicySet::load(&[dir.path().to_path_buf()], None)
            .unwrap()
            .version;
        assert_eq!(first, again);
        assert_ne!(first, changed);
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let got = errors(PolicySet::load(&[missing], None), dir.path());
        assert_eq!(got.len(), 1);
        assert!(
            got[0].starts_with("nope: cannot read the policies directory"),
            "{got:?}"
        );
    }
}
