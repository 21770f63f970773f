//! docs/json.md cannot drift from what jobctl prints (issue 15, "Many
//! hosts, one view"): on a real systemd 252, a fixture host (jobs that
//! succeed, fail, chain, notify, carry labels) is driven through every
//! command that has `--json`, and the field paths of each document it
//! prints are compared with the field tables of docs/json.md, both ways: a
//! field printed but not documented fails, and so does a field documented
//! but printed by none of the fixture's documents.

use std::collections::{BTreeMap, BTreeSet};

use super::*;

const FAKEJOB: &str = env!("CARGO_BIN_EXE_fakejob");
const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/json.md");

/// Documented fields the fixture cannot make jobctl print, each with why.
/// Keep this short: every entry is a field no test checks is real.
const NOT_IN_FIXTURE: &[(&str, &str, &str)] = &[
    (
        "jobctl.apply/v1",
        "warnings",
        "only per-user mode warns (timers that stop at logout); \
         user_mode_warns_when_lingering_is_off checks it",
    ),
    (
        "jobctl.remove/v1",
        "purge_failed[].database",
        "needs a database that cannot be written to during remove --purge",
    ),
    (
        "jobctl.remove/v1",
        "purge_failed[].error",
        "needs a database that cannot be written to during remove --purge",
    ),
];

/// What docs/json.md says: per schema, the documented paths and the paths
/// documented as maps (keys are data, not fields).
#[derive(Debug, Default)]
struct Documented {
    fields: BTreeSet<String>,
    maps: BTreeSet<String>,
}

/// A field table row: its path, its type cell.
type Rows = Vec<(String, String)>;

/// Parses docs/json.md: `## `jobctl.NAME/v1`` sections (documents) and
/// `### object: NAME` sections (shared objects), each with a table whose
/// first column is a field path in backquotes and whose second is its type.
/// A type linking to `#object-NAME` includes that object's fields under the
/// path (`[]` added for arrays); a type that says `map` has data as keys.
fn parse_doc(text: &str) -> Result<BTreeMap<String, Documented>, String> {
    let mut documents: BTreeMap<String, Rows> = BTreeMap::new();
    let mut objects: BTreeMap<String, Rows> = BTreeMap::new();
    enum In {
        Nothing,
        Document(String),
        Object(String),
    }
    let mut section = In::Nothing;
    for (n, line) in text.lines().enumerate() {
        if let Some(h) = line.strip_prefix("## ") {
            section = match h.trim().strip_prefix("`jobctl.") {
                Some(rest) => {
                    let name = rest.strip_suffix("/v1`").ok_or_else(|| {
                        format!("json.md:{}: a schema heading ends in /v1`", n + 1)
                    })?;
                    In::Document(format!("jobctl.{name}/v1"))
                }
                None => In::Nothing,
            };
            continue;
        }
        if let Some(h) = line.strip_prefix("### ") {
            section = match h.trim().strip_prefix("object: ") {
                Some(name) => In::Object(name.trim().to_string()),
                None => match section {
                    In::Object(_) => In::Nothing,
                    other => other,
                },
            };
            continue;
        }
        let Some(row) = line.strip_prefix("| `") else {
            continue;
        };
        let cells: Vec<&str> = row.split(" | ").collect();
        let path = cells[0]
            .strip_suffix('`')
            .ok_or_else(|| format!("json.md:{}: field cell not `path`", n + 1))?;
        let kind = cells.get(1).copied().unwrap_or_default().to_string();
        let rows = match &section {
            In::Document(name) => documents.entry(name.clone()).or_default(),
            In::Object(name) => objects.entry(name.clone()).or_default(),
            In::Nothing => continue,
        };
        rows.push((path.to_string(), kind));
    }
    fn expand(
        prefix: &str,
        rows: &Rows,
        objects: &BTreeMap<String, Rows>,
        out: &mut Documented,
        depth: usize,
    ) -> Result<(), String> {
        if depth > 8 {
            return Err(format!("objects include each other at {prefix}"));
        }
        for (path, kind) in rows {
            let full = if prefix.is_empty() {
                path.clone()
            } else {
                format!("{prefix}.{path}")
            };
            out.fields.insert(full.clone());
            if kind.contains("map") {
                out.maps.insert(full.clone());
            }
            if let Some(i) = kind.find("(#object-") {
                let name: String = kind[i + 9..].chars().take_while(|c| *c != ')').collect();
                let object = objects
                    .get(&name)
                    .ok_or_else(|| format!("{full}: no `### object: {name}` section"))?;
                let inner = if kind.contains("array") {
                    format!("{full}[]")
                } else {
                    full.clone()
                };
                expand(&inner, object, objects, out, depth + 1)?;
            }
        }
        Ok(())
    }
    let mut all = BTreeMap::new();
    for (name, rows) in &documents {
        let mut documented = Documented::default();
        expand("", rows, &objects, &mut documented, 0)?;
        all.insert(name.clone(), documented);
    }
    Ok(all)
}

/// Every field path of a JSON value: `a`, `a.b`, and for arrays of objects
/// `a[].b`.
fn paths(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    let Value::Object(map) = value else {
        return;
    };
    for (key, child) in map {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        out.insert(path.clone());
        match child {
            Value::Object(_) => paths(child, &path, out),
            Value::Array(items) => {
                for item in items {
                    paths(item, &format!("{path}[]"), out);
                }
            }
            _ => {}
        }
    }
}

/// The documents of the fixture host, as printed.
struct Printed {
    docs: Vec<(String, Value)>,
    dump: PathBuf,
}

impl Printed {
    /// Parses one command's stdout as a document and keeps it (also written
    /// to the scratch folder, to read when a case fails).
    fn take(&mut self, what: &str, out: &Output) -> Result<Value, Failed> {
        let doc: Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("{what}: not one JSON document ({e}): {}", text(out)))?;
        let schema = doc["schema"]
            .as_str()
            .ok_or_else(|| format!("{what}: no schema: {doc:#}"))?
            .to_string();
        fs::write(
            self.dump.join(format!(
                "{:02}-{}.json",
                self.docs.len(),
                schema.replace('/', "-")
            )),
            serde_json::to_string_pretty(&doc).unwrap_or_default(),
        )
        .ok();
        self.docs.push((schema, doc.clone()));
        Ok(doc)
    }
}

fn fake(steps: &[&str], extra: &str) -> String {
    let words: Vec<String> = std::iter::once(FAKEJOB)
        .chain(steps.iter().copied())
        .map(|w| format!("{w:?}"))
        .collect();
    format!("command = [{}]\n{extra}", words.join(", "))
}

pub fn every_json_field_is_documented_and_every_documented_field_printed(env: &Env) -> R {
    let documented = parse_doc(&fs::read_to_string(DOC).map_err(|e| format!("{DOC}: {e}"))?)?;
    let dir = env.jobs_dir("json-docs");
    let dump = env.scratch.join("json-docs-printed");
    let _ = fs::remove_dir_all(&dump);
    fs::create_dir_all(&dump).map_err(|e| e.to_string())?;
    let received = env.scratch.join("json-docs-received");
    let config = env.scratch.join("json-docs-config.toml");
    fs::write(
        &config,
        format!(
            "jobctl_path = \"{JOBCTL}\"\n\
             [notify.channels.rec]\n\
             command = [\"/bin/sh\", \"-c\", \"cat >> {}\"]\n",
            received.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let jobctl_in = |dir: &Path, args: &[&str]| env.jobctl_with(&config, dir, args);
    let jobctl = |args: &[&str]| env.jobctl_with(&config, &dir, args);
    write_job(
        &dir,
        "jd-good",
        &fake(
            &["out", "hello"],
            "description = \"A job that succeeds\"\ndaily = \"03:00\"\n\
             owner = \"ana\"\nteam = \"data\"\ntags = [\"etl\"]\n\
             on_success = [\"jd-chained\"]\n",
        ),
    );
    write_job(
        &dir,
        "jd-bad",
        &fake(
            &["bytes", "64K", "err", "exit", "3"],
            "daily = \"04:00\"\nnotify = [\"rec\"]\noutput_limit = \"8K\"\n",
        ),
    );
    write_job(
        &dir,
        "jd-chained",
        &fake(&["out", "chained"], "manual = true\n"),
    );
    write_job(&dir, "jd-slow", &fake(&["sleep", "30"], "manual = true\n"));
    let mut printed = Printed {
        docs: Vec::new(),
        dump,
    };
    let good = dir.join("jd-good.toml");
    let good = good.to_str().unwrap_or_default();

    printed.take("validate", &jobctl(&["validate", "--json"]))?;
    printed.take("render", &jobctl(&["render", "--json", good]))?;
    let generated = env.scratch.join("json-docs-generated");
    let _ = fs::remove_dir_all(&generated);
    printed.take(
        "generate",
        &jobctl(&[
            "generate",
            "--json",
            "--out",
            generated.to_str().unwrap_or_default(),
        ]),
    )?;
    // Calendar: a zone, a repetition systemd gets wrong (a warning), one
    // that never elapses, one that is not an expression; cron lines.
    printed.take(
        "calendar",
        &jobctl(&[
            "calendar",
            "--json",
            "--iterations",
            "2",
            "daily Europe/Berlin",
            "*-*-* 00/5:00:00",
            "*-02-30",
            "bogus",
        ]),
    )?;
    printed.take(
        "calendar --cron",
        &jobctl(&["calendar", "--json", "--cron", "0 3 * * 1-5", "@reboot"]),
    )?;
    // A job of another folder (left alone by this folder's apply), and a
    // unit systemd will not load (Restart=always on a oneshot) in a third.
    let other = env.jobs_dir("json-docs-other");
    write_job(
        &other,
        "jd-other",
        &fake(&["out", "other"], "manual = true\n"),
    );
    ok(&jobctl_in(&other, &["apply"]))?;
    let apply = printed.take("apply --diff", &jobctl(&["apply", "--json", "--diff"]))?;
    check(apply["changed"] == true, || format!("{apply:#}"))?;
    let refused = env.jobs_dir("json-docs-refused");
    write_job(
        &refused,
        "jd-refused",
        "command = [\"/bin/true\"]\nmanual = true\n[service_extra]\nRestart = \"always\"\n",
    );
    write_job(
        &refused,
        "jd-typo",
        "comand = [\"/bin/true\"]\nmanual = true\n",
    );
    let apply = printed.take(
        "apply (not loaded, invalid)",
        &jobctl_in(&refused, &["apply", "--json"]),
    )?;
    check(
        apply["not_loaded"].as_array().is_some_and(|n| n.len() == 1)
            && apply["diagnostics"]
                .as_array()
                .is_some_and(|d| !d.is_empty()),
        || format!("{apply:#}"),
    )?;
    for job in ["jd-refused", "jd-typo"] {
        fs::remove_file(refused.join(format!("{job}.toml"))).map_err(|e| e.to_string())?;
    }
    ok(&jobctl_in(&refused, &["apply"]))?;
    printed.take("cat", &jobctl(&["cat", "--json", "jd-good"]))?;
    for job in ["jd-good", "jd-bad"] {
        printed.take(
            &format!("run {job} --wait"),
            &jobctl(&["run", "--json", "--wait", job]),
        )?;
    }
    env.wait_for_run("jd-chained", Duration::from_secs(30), |r| {
        r["status"] == "success" && !r["upstream"].is_null()
    })?;
    printed.take("run --no-wait", &jobctl(&["run", "--json", "jd-slow"]))?;
    printed.take("list", &jobctl(&["list", "--json"]))?;
    printed.take("status", &jobctl(&["status", "--json"]))?;
    printed.take("status JOB", &jobctl(&["status", "--json", "jd-bad"]))?;
    printed.take("health", &jobctl(&["health", "--json"]))?;
    // A configuration that does not validate is a problem of no job.
    let bad_config = env.scratch.join("json-docs-bad-config.toml");
    fs::write(
        &bad_config,
        format!("jobctl_path = \"{JOBCTL}\"\nbogus = 1\n"),
    )
    .map_err(|e| e.to_string())?;
    let health = printed.take(
        "health (bad configuration)",
        &env.jobctl_with(&bad_config, &dir, &["health", "--json"]),
    )?;
    check(
        health["global"].as_array().is_some_and(|g| !g.is_empty()),
        || format!("no global problem: {health:#}"),
    )?;
    printed.take("history", &jobctl(&["history", "--json", "--limit", "0"]))?;
    printed.take("logs", &jobctl(&["logs", "--json", "jd-bad"]))?;
    printed.take("logs (chained)", &jobctl(&["logs", "--json", "jd-chained"]))?;
    printed.take("watch", &jobctl(&["watch", "--once", "--json"]))?;
    printed.take("notifications", &jobctl(&["notifications", "--json"]))?;
    printed.take("notify test", &jobctl(&["notify", "test", "--json", "rec"]))?;
    printed.take("disable", &jobctl(&["disable", "--json", "jd-good"]))?;
    printed.take("enable", &jobctl(&["enable", "--json", "jd-good"]))?;
    printed.take("history prune", &jobctl(&["history", "prune", "--json"]))?;
    // The dashboard's tokens, kept beside this fixture's configuration (a
    // fresh file, so that the name is free).
    let _ = fs::remove_file(env.scratch.join("web-tokens"));
    let created = jobctl(&["token", "create", "--name", "jd-reader", "--scope", "read"]);
    check(created.status.success(), || {
        format!("token create: {}", String::from_utf8_lossy(&created.stderr))
    })?;
    printed.take("token list", &jobctl(&["token", "list", "--json"]))?;
    let crontab = env.scratch.join("json-docs.crontab");
    fs::write(
        &crontab,
        "MAILTO=ops@example.com\n# nightly backup\n0 3 * * * /usr/bin/backup --all\n\
         61 * * * * /bin/never\n",
    )
    .map_err(|e| e.to_string())?;
    let imported = env.scratch.join("json-docs-imported");
    let _ = fs::remove_dir_all(&imported);
    for dry_run in [true, false] {
        let mut args = vec![
            "import",
            "crontab",
            crontab.to_str().unwrap_or_default(),
            "--job-user",
            "root",
            "--out",
            imported.to_str().unwrap_or_default(),
            "--json",
        ];
        if dry_run {
            args.push("--dry-run");
        }
        printed.take("import crontab", &jobctl(&args))?;
    }
    let _ = jobctl(&["run", "--json", "--wait", "jd-chained"]);
    printed.take(
        "remove --purge",
        &jobctl(&["remove", "--json", "--purge", "jd-chained"]),
    )?;
    // Errors: one with diagnostics, one from the command line.
    write_job(&dir, "jd-typo", "comand = [\"/bin/true\"]\nmanual = true\n");
    printed.take("validate (an error)", &jobctl(&["validate", "--json"]))?;
    printed.take(
        "render (an error)",
        &jobctl(&[
            "render",
            "--json",
            dir.join("jd-typo.toml").to_str().unwrap_or_default(),
        ]),
    )?;
    printed.take("a refused flag", &jobctl(&["list", "--json", "--bogus"]))?;
    let _ = env.sh("systemctl stop jobctl-jd-slow.service");

    // Compare, both ways.
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (schema, doc) in &printed.docs {
        paths(doc, "", seen.entry(schema.clone()).or_default());
    }
    let mut problems = Vec::new();
    for (schema, fields) in &seen {
        let Some(doc) = documented.get(schema) else {
            problems.push(format!(
                "{schema}: printed, but docs/json.md has no `## `{schema}`` section; its fields: {fields:?}"
            ));
            continue;
        };
        for field in fields {
            let in_map = doc.maps.iter().any(|m| {
                field.starts_with(&format!("{m}.")) || field.starts_with(&format!("{m}[]."))
            });
            if !in_map && !doc.fields.contains(field) {
                problems.push(format!("{schema}: `{field}` is printed but not documented"));
            }
        }
    }
    for (schema, field, _) in NOT_IN_FIXTURE {
        if !documented
            .get(*schema)
            .is_some_and(|d| d.fields.contains(*field))
        {
            problems.push(format!("{schema}: `{field}` is excused but not documented"));
        }
    }
    for (schema, doc) in &documented {
        let printed_fields = seen.get(schema);
        for field in &doc.fields {
            let excused = NOT_IN_FIXTURE
                .iter()
                .any(|(s, f, _)| *s == schema && *f == field);
            if !excused && !printed_fields.is_some_and(|p| p.contains(field)) {
                problems.push(format!(
                    "{schema}: `{field}` is documented but no document of the fixture printed it"
                ));
            }
        }
    }
    check(problems.is_empty(), || {
        format!(
            "docs/json.md and the printed documents (in {}) disagree:\n{}",
            printed.dump.display(),
            problems.join("\n")
        )
    })
}
