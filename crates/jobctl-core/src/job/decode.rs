//! The decoder shared by job files and the configuration's `[defaults]`
//! ([`JobSpec`]): each key read from the spanned TOML tree and checked on its
//! own, every problem reported with its position.

use super::*;

/// Parses one of the simple schedule forms.
pub(super) type SimpleParser = fn(&str) -> Result<Schedule, String>;

/// A job file or the `[defaults]` table, each key checked on its own.
#[derive(Debug, Clone, Default)]
pub struct JobSpec {
    pub(super) description: Option<Sp<String>>,
    pub(super) command: Option<Sp<Vec<String>>>,
    pub(super) shell: Option<Sp<String>>,
    pub(super) shell_path: Option<Sp<String>>,
    pub(super) working_directory: Option<Sp<String>>,
    pub(super) user: Option<Sp<String>>,
    pub(super) group: Option<Sp<String>>,
    pub(super) dynamic_user: Option<Sp<bool>>,
    pub(super) environment: BTreeMap<String, Sp<String>>,
    pub(super) environment_file: Option<Sp<Vec<Sp<String>>>>,
    pub(super) timeout: Option<Sp<Timespan>>,
    pub(super) stdin: Option<Sp<String>>,
    pub(super) schedules: Vec<Sp<Schedule>>,
    /// Calendar expressions as written, for time-zone checks.
    pub(super) calendars: Vec<Sp<String>>,
    pub(super) manual: Option<Sp<bool>>,
    pub(super) timezone: Option<Sp<String>>,
    pub(super) persistent: Option<Sp<bool>>,
    pub(super) randomized_delay: Option<Sp<Timespan>>,
    pub(super) accuracy: Option<Sp<Timespan>>,
    pub(super) on_boot: Option<Sp<Timespan>>,
    pub(super) nice: Option<Sp<i32>>,
    pub(super) memory_max: Option<Sp<String>>,
    pub(super) cpu_quota: Option<Sp<String>>,
    pub(super) io_weight: Option<Sp<u16>>,
    pub(super) private_tmp: Option<Sp<bool>>,
    pub(super) protect_system: Option<Sp<String>>,
    pub(super) no_new_privileges: Option<Sp<bool>>,
    pub(super) extra: ExtraDirectives,
    /// Where each `*_extra` directive's name is written.
    pub(super) extra_names: Vec<(Section, String, Range<usize>)>,
    pub(super) after: Option<Vec<String>>,
    pub(super) wants: Option<Vec<String>>,
    pub(super) on_success: Option<Sp<Vec<Chained>>>,
    pub(super) on_failure: Option<Sp<Vec<Chained>>>,
    pub(super) owner: Option<String>,
    pub(super) team: Option<String>,
    pub(super) tags: Vec<String>,
    pub(super) metadata: BTreeMap<String, String>,
    pub(super) enabled: Option<Sp<bool>>,
    pub(super) not_after: Option<Sp<jiff::civil::Date>>,
    pub(super) retry: Option<Sp<Retry>>,
    pub(super) output_limit: Option<Sp<ByteSize>>,
    pub(super) merge_output: Option<Sp<bool>>,
    pub(crate) notify: crate::notify::NotifySpec,
}

impl JobSpec {
    /// Decodes every key present in `reader`'s table, reporting each problem.
    pub fn decode(
        reader: &TableReader<'_, '_>,
        mode: Mode,
        zones: &dyn ZoneLookup,
        diags: &mut Diagnostics<'_>,
    ) -> JobSpec {
        let mut spec = JobSpec {
            description: reader.string("description", "\"Refresh the warehouse\"", diags),
            ..JobSpec::default()
        };
        if let Some(d) = &spec.description {
            check_plain(
                reader,
                "description",
                d,
                "keep the description on one line, without control characters or a trailing backslash",
                diags,
            );
        }
        spec.decode_command(reader, diags);
        spec.decode_identity(reader, mode, diags);
        spec.decode_environment(reader, diags);
        spec.timeout = reader.duration("timeout", "\"30min\"", diags);
        if let Some(t) = &spec.timeout
            && t.value == Timespan::ZERO
        {
            diags.error(
                t.span.clone(),
                "timeout",
                "a timeout of 0 would mean \"no timeout\" to systemd",
                Some(
                    "write timeout = \"infinity\" if the job really must never time out"
                        .to_string(),
                ),
            );
        }
        spec.stdin = reader.string("stdin", "\"input text\\n\"", diags);
        if let Some(stdin) = spec.stdin.take() {
            if stdin.value.contains('\0') {
                diags.error(
                    stdin.span,
                    &reader.path("stdin"),
                    "the input text contains a NUL byte",
                    Some("stdin is text; NUL bytes cannot be given".into()),
                );
            } else if stdin.value.len() > escape::MAX_ARG_LEN {
                diags.error(
                    stdin.span,
                    &reader.path("stdin"),
                    format!(
                        "the input text is {} bytes; the limit is {}",
                        stdin.value.len(),
                        escape::MAX_ARG_LEN
                    ),
                    None,
                );
            } else {
                spec.stdin = Some(stdin);
            }
        }
        spec.decode_schedules(reader, zones, diags);
        spec.decode_timer(reader, diags);
        spec.decode_resources(reader, diags);
        for (section, reserved) in [
            (Section::Unit, UNIT_RESERVED),
            (Section::Service, SERVICE_RESERVED),
            (Section::Timer, TIMER_RESERVED),
        ] {
            let (directives, names) = decode_extra(reader, section.extra_key(), reserved, diags);
            match section {
                Section::Unit => spec.extra.unit = directives,
                Section::Service => spec.extra.service = directives,
                Section::Timer => spec.extra.timer = directives,
            }
            spec.extra_names
                .extend(names.into_iter().map(|(name, span)| (section, name, span)));
        }
        spec.after = decode_units(reader, "after", diags);
        spec.wants = decode_units(reader, "wants", diags);
        spec.on_success = decode_chain(reader, "on_success", diags);
        spec.on_failure = decode_chain(reader, "on_failure", diags);
        spec.decode_metadata(reader, diags);
        spec.enabled = reader.bool("enabled", diags);
        spec.not_after = reader.date("not_after", diags);
        spec.retry = decode_retry(reader, diags);
        spec.output_limit = reader.size("output_limit", "\"4M\"", diags);
        spec.merge_output = reader.bool("merge_output", diags);
        spec.notify = crate::notify::NotifySpec::decode(reader, diags);
        spec
    }

    fn decode_command(&mut self, reader: &TableReader<'_, '_>, diags: &mut Diagnostics<'_>) {
        if let Some(argv) =
            reader.string_array("command", "[\"/usr/bin/backup\", \"--full\"]", diags)
        {
            let mut ok = true;
            if argv.value.is_empty() {
                diags.error(argv.span.clone(), &reader.path("command"), "the command is empty", Some("name the program and its arguments: command = [\"/usr/bin/backup\", \"--full\"]".to_string()));
                ok = false;
            }
            for (index, arg) in argv.value.iter().enumerate() {
                if let Err(err) = escape::exec_arg(&arg.value) {
                    diags.error(
                        arg.span.clone(),
                        &reader.path(&format!("command[{index}]")),
                        format!("this argument {err}"),
                        Some(err.hint().to_string()),
                    );
                    ok = false;
                }
            }
            if let Some(program) = argv.value.first() {
                let p = &program.value;
                if p.is_empty() {
                    diags.error(
                        program.span.clone(),
                        &reader.path("command[0]"),
                        "the program name is empty",
                        None,
                    );
                    ok = false;
                } else if !p.starts_with('/') && p.contains('/') {
                    diags.error(
                        program.span.clone(),
                        &reader.path("command[0]"),
                        format!("\"{p}\" is a relative path"),
                        Some("use an absolute path (e.g. \"/opt/app/bin/run\") or a bare program name looked up in PATH".to_string()),
                    );
                    ok = false;
                }
            }
            if ok {
                self.command = Some(Sp::new(
                    argv.value.into_iter().map(|a| a.value).collect(),
                    argv.span,
                ));
            }
        }
        if let Some(script) = reader.string(
            "shell",
            "\"pg_dump app | gzip > /backup/app.sql.gz\"",
            diags,
        ) {
            if script.value.trim().is_empty() {
                diags.error(
                    script.span.clone(),
                    &reader.path("shell"),
                    "the shell script is empty",
                    None,
                );
            } else if let Err(err) = escape::exec_arg(&script.value) {
                diags.error(
                    script.span.clone(),
                    &reader.path("shell"),
                    format!("the script {err}"),
                    None,
                );
            } else {
                self.shell = Some(script);
            }
        }
        if let Some(path) = reader.string("shell_path", "\"/bin/bash\"", diags)
            && check_absolute_path(reader, "shell_path", &path, diags)
        {
            self.shell_path = Some(path);
        }
    }

    fn decode_identity(
        &mut self,
        reader: &TableReader<'_, '_>,
        mode: Mode,
        diags: &mut Diagnostics<'_>,
    ) {
        self.working_directory = reader.string("working_directory", "\"/srv/app\"", diags);
        if let Some(dir) = self.working_directory.take()
            && check_absolute_path(reader, "working_directory", &dir, diags)
        {
            self.working_directory = Some(dir);
        }
        for key in ["user", "group"] {
            let Some(name) = reader.string(key, "\"etl\"", diags) else {
                continue;
            };
            if mode == Mode::User {
                diags.error(
                    name.span.clone(),
                    &reader.path(key),
                    format!("`{key}` cannot be set for a per-user job"),
                    Some(format!(
                        "per-user jobs run as the user whose manager runs them; remove `{key}`"
                    )),
                );
                continue;
            }
            match naming::check_user_group_name(&name.value) {
                Ok(()) => {
                    if key == "user" {
                        self.user = Some(name);
                    } else {
                        self.group = Some(name);
                    }
                }
                Err(message) => diags.error(name.span, &reader.path(key), message, None),
            }
        }
        self.dynamic_user = reader.bool("dynamic_user", diags);
        if mode == Mode::User
            && let Some(d) = self.dynamic_user.take()
        {
            diags.error(
                d.span,
                &reader.path("dynamic_user"),
                "`dynamic_user` cannot be set for a per-user job",
                Some("remove it; per-user jobs run as their user".into()),
            );
        }
    }

    fn decode_environment(&mut self, reader: &TableReader<'_, '_>, diags: &mut Diagnostics<'_>) {
        for (name, value) in reader.scalar_map("environment", "{ BATCH_SIZE = \"500\" }", diags) {
            let key = reader.path(&format!("environment.{name}"));
            if let Err(message) = naming::check_env_name(&name) {
                diags.error(value.span.clone(), &key, message, None);
            } else if let Err(err) = escape::environment_assignment(&name, &value.value) {
                diags.error(
                    value.span.clone(),
                    &key,
                    format!("the value {err}"),
                    Some(
                        "systemd allows tabs and newlines in values, no other control characters"
                            .into(),
                    ),
                );
            } else {
                self.environment.insert(name, value);
            }
        }
        let files = reader.string_list("environment_file", "[\"/etc/default/app\"]", diags);
        if let Some(span) = reader.raw("environment_file").map(|v| v.span()) {
            let mut paths = Vec::new();
            for file in files {
                // A leading '-' means "ignore the file if it is missing", as in systemd.
                let path = file.value.strip_prefix('-').unwrap_or(&file.value);
                let candidate = Sp::new(path.to_string(), file.span.clone());
                if check_absolute_path(reader, "environment_file", &candidate, diags) {
                    paths.push(file);
                }
            }
            self.environment_file = Some(Sp::new(paths, span));
        }
    }

    fn decode_schedules(
        &mut self,
        reader: &TableReader<'_, '_>,
        zones: &dyn ZoneLookup,
        diags: &mut Diagnostics<'_>,
    ) {
        for expr in reader.string_list("on_calendar", "\"Mon..Fri *-*-* 02:15:00\"", diags) {
            if let Some(schedule) =
                crate::calendar_bridge::calendar_schedule(&expr, reader, zones, diags)
            {
                self.calendars.push(expr.clone());
                self.schedules.push(Sp::new(schedule, expr.span));
            }
        }
        for line in reader.string_list("cron", "\"*/15 * * * 1-5\"", diags) {
            if let Some(schedule) = crate::calendar_bridge::cron_schedule(&line, reader, diags) {
                self.schedules.push(Sp::new(schedule, line.span));
            }
        }
        if let Some(interval) = reader.duration("every", "\"15min\"", diags) {
            let checked = if interval.value.is_infinite() {
                Err("the interval must be finite".to_string())
            } else {
                let what = format!(
                    "the interval {}",
                    if interval.value == Timespan::ZERO {
                        "0s".to_string()
                    } else {
                        interval.value.to_string()
                    }
                );
                schedule::check_min_interval(&what, interval.value)
            };
            if let Err(message) = checked {
                diags.error(
                    interval.span,
                    &reader.path("every"),
                    message,
                    Some("e.g. every = \"15min\"".into()),
                );
            } else {
                self.schedules
                    .push(interval.map(|interval| Schedule::Every { interval }));
            }
        }
        let simple: [(&str, &str, SimpleParser); 4] = [
            ("hourly", "\":05\"", |t| {
                schedule::parse_hourly(t).map(|minute| Schedule::Hourly { minute })
            }),
            ("daily", "\"02:15\"", |t| {
                schedule::parse_time_of_day(t).map(|time| Schedule::Daily { time })
            }),
            ("weekly", "\"Sun 23:59\"", |t| {
                schedule::parse_weekly(t).map(|(days, time)| Schedule::Weekly { days, time })
            }),
            ("monthly", "\"1 09:00\"", |t| {
                schedule::parse_monthly(t).map(|(days, time)| Schedule::Monthly { days, time })
            }),
        ];
        for (key, example, parse) in simple {
            for text in reader.string_list(key, example, diags) {
                match parse(&text.value) {
                    Ok(schedule) => self.schedules.push(Sp::new(schedule, text.span)),
                    Err(message) => diags.error(
                        text.span,
                        &reader.path(key),
                        message,
                        Some(format!("e.g. {key} = {example}")),
                    ),
                }
            }
        }
        self.manual = reader.bool("manual", diags);
        self.timezone = reader.string("timezone", "\"Europe/London\"", diags);
        if let Some(tz) = self.timezone.take() {
            match check_timezone(&tz.value, zones) {
                Ok(name) => self.timezone = Some(Sp::new(name, tz.span)),
                Err(message) => {
                    let hint = match crate::context::suggest_zone(zones, &tz.value) {
                        Some(near) => format!("did you mean \"{near}\"?"),
                        None => "use an exact name from /usr/share/zoneinfo, e.g. \"Asia/Hong_Kong\", or \"UTC\"".into(),
                    };
                    diags.error(tz.span, &reader.path("timezone"), message, Some(hint))
                }
            }
        }
    }

    fn decode_timer(&mut self, reader: &TableReader<'_, '_>, diags: &mut Diagnostics<'_>) {
        self.persistent = reader.bool("persistent", diags);
        self.randomized_delay = reader.duration("randomized_delay", "\"5min\"", diags);
        self.accuracy = reader.duration("accuracy", "\"1s\"", diags);
        self.on_boot = reader.duration("on_boot", "\"5min\"", diags);
        for (key, value) in [
            ("randomized_delay", &self.randomized_delay),
            ("accuracy", &self.accuracy),
            ("on_boot", &self.on_boot),
        ] {
            if let Some(v) = value
                && v.value.is_infinite()
            {
                diags.error(
                    v.span.clone(),
                    &reader.path(key),
                    "must be a finite duration",
                    None,
                );
            }
        }
        if let Some(a) = &self.accuracy
            && a.value == Timespan::ZERO
        {
            diags.error(
                a.span.clone(),
                &reader.path("accuracy"),
                "systemd treats an accuracy of 0 as 1us, waking the system needlessly",
                Some("use accuracy = \"1s\" for to-the-second timers".into()),
            );
        }
    }

    fn decode_resources(&mut self, reader: &TableReader<'_, '_>, diags: &mut Diagnostics<'_>) {
        if let Some(nice) = reader.integer("nice", "10", diags) {
            if (-20..=19).contains(&nice.value) {
                self.nice = Some(nice.map(|n| n as i32));
            } else {
                diags.error(
                    nice.span,
                    &reader.path("nice"),
                    format!("nice {} is out of range", nice.value),
                    Some("use -20 (highest priority) to 19 (lowest)".into()),
                );
            }
        }
        if let Some(mem) = reader.string("memory_max", "\"2G\"", diags) {
            match check_memory(&mem.value) {
                Ok(value) => self.memory_max = Some(Sp::new(value, mem.span)),
                Err(message) => diags.error(
                    mem.span,
                    &reader.path("memory_max"),
                    message,
                    Some("e.g. memory_max = \"2G\", \"512M\", \"80%\" or \"infinity\"".into()),
                ),
            }
        }
        if let Some(cpu) = reader.string("cpu_quota", "\"50%\"", diags) {
            match check_percentage(&cpu.value, 100_000) {
                Ok(value) if value > 0 => self.cpu_quota = Some(Sp::new(format!("{value}%"), cpu.span)),
                _ => diags.error(cpu.span, &reader.path("cpu_quota"), format!("\"{}\" is not a CPU quota", cpu.value), Some("write a percentage of one CPU, e.g. \"50%\" (half a CPU) or \"200%\" (two CPUs)".into())),
            }
        }
        if let Some(weight) = reader.integer("io_weight", "100", diags) {
            if (1..=10_000).contains(&weight.value) {
                self.io_weight = Some(weight.map(|w| w as u16));
            } else {
                diags.error(
                    weight.span,
                    &reader.path("io_weight"),
                    format!("io_weight {} is out of range", weight.value),
                    Some("use 1 to 10000 (100 is the default)".into()),
                );
            }
        }
        self.private_tmp = reader.bool("private_tmp", diags);
        self.no_new_privileges = reader.bool("no_new_privileges", diags);
        if let Some(raw) = reader.raw("protect_system") {
            let span = raw.span();
            match raw.get_ref() {
                DeValue::Boolean(b) => self.protect_system = Some(Sp::new(if *b { "yes" } else { "no" }.into(), span)),
                DeValue::String(s) if matches!(s.as_ref(), "full" | "strict") => self.protect_system = Some(Sp::new(s.to_string(), span)),
                _ => diags.error(span, &reader.path("protect_system"), "expected true, false, \"full\" or \"strict\"", Some("protect_system = \"strict\" makes the whole file system read-only except /dev, /proc, /sys; add writable paths with service_extra.ReadWritePaths".into())),
            }
        }
    }

    fn decode_metadata(&mut self, reader: &TableReader<'_, '_>, diags: &mut Diagnostics<'_>) {
        for key in ["owner", "team"] {
            if let Some(value) = reader.string(key, "\"data-platform\"", diags)
                && check_display(reader, key, &value, diags)
            {
                if key == "owner" {
                    self.owner = Some(value.value);
                } else {
                    self.team = Some(value.value);
                }
            }
        }
        for (index, tag) in reader
            .string_list("tags", "[\"etl\", \"nightly\"]", diags)
            .into_iter()
            .enumerate()
        {
            if tag.value.is_empty()
                || tag
                    .value
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == ',')
            {
                diags.error(
                    tag.span,
                    &reader.path(&format!("tags[{index}]")),
                    format!("\"{}\" is not a tag", tag.value.escape_debug()),
                    Some(
                        "tags are single words: letters, digits and punctuation other than ','"
                            .into(),
                    ),
                );
            } else {
                self.tags.push(tag.value);
            }
        }
        for (name, value) in
            reader.scalar_map("metadata", "{ runbook = \"https://wiki/etl\" }", diags)
        {
            if check_display(reader, &format!("metadata.{name}"), &value, diags) {
                self.metadata.insert(name, value.value);
            }
        }
    }
}

pub(super) fn check_plain(
    reader: &TableReader<'_, '_>,
    key: &str,
    value: &Sp<String>,
    hint: &str,
    diags: &mut Diagnostics<'_>,
) -> bool {
    match escape::check_plain(&value.value) {
        Ok(()) => true,
        Err(err) => {
            diags.error(
                value.span.clone(),
                &reader.path(key),
                format!("the value {err}"),
                Some(hint.to_string()),
            );
            false
        }
    }
}

/// Text shown to people (`owner`, `tags`, metadata): no control characters,
/// so that `jobctl list` cannot be made to print terminal escapes.
pub(super) fn check_display(
    reader: &TableReader<'_, '_>,
    key: &str,
    value: &Sp<String>,
    diags: &mut Diagnostics<'_>,
) -> bool {
    if let Some(c) = value.value.chars().find(|c| c.is_control()) {
        diags.error(
            value.span.clone(),
            &reader.path(key),
            format!("the value contains {}", naming::describe_char(c)),
            Some("keep it on one line, without control characters".into()),
        );
        return false;
    }
    true
}

pub(super) fn check_absolute_path(
    reader: &TableReader<'_, '_>,
    key: &str,
    path: &Sp<String>,
    diags: &mut Diagnostics<'_>,
) -> bool {
    if !path.value.starts_with('/') {
        diags.error(
            path.span.clone(),
            &reader.path(key),
            format!("\"{}\" is not an absolute path", path.value.escape_debug()),
            Some("write the full path, starting with /".into()),
        );
        return false;
    }
    if path.value.split('/').any(|c| c == "." || c == "..") {
        diags.error(
            path.span.clone(),
            &reader.path(key),
            format!("\"{}\" contains . or .. components", path.value),
            Some("write the path without . and .., as systemd requires normalized paths".into()),
        );
        return false;
    }
    check_plain(
        reader,
        key,
        path,
        "paths must be single lines without control characters or surrounding spaces",
        diags,
    )
}

pub(super) fn check_timezone(name: &str, zones: &dyn ZoneLookup) -> Result<String, String> {
    if name.eq_ignore_ascii_case("UTC") {
        return Ok("UTC".into());
    }
    if name.is_empty()
        || name.starts_with('/')
        || name.contains("..")
        || name.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(format!(
            "\"{}\" is not a time zone name",
            name.escape_debug()
        ));
    }
    match zones.zone(name) {
        Some(_) => Ok(name.to_string()),
        None => Err(format!(
            "unknown time zone \"{name}\" (names are case-sensitive)"
        )),
    }
}

pub(super) fn check_memory(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value == "infinity" {
        return Ok(value.into());
    }
    if value.ends_with('%') {
        return match check_percentage(value, 100) {
            Ok(p) if p > 0 => Ok(format!("{p}%")),
            _ => Err(format!("\"{value}\" is not a percentage from 1% to 100%")),
        };
    }
    match ByteSize::parse(value) {
        Ok(size) if size.bytes() > 0 => Ok(size.to_string()),
        Ok(_) => Err("a memory limit of 0 would stop the job from running at all".into()),
        Err(err) => Err(err.to_string()),
    }
}

/// `N%` with N a whole number up to `max`.
pub(super) fn check_percentage(value: &str, max: u64) -> Result<u64, ()> {
    let digits = value.trim().strip_suffix('%').ok_or(())?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(());
    }
    let n: u64 = digits.parse().map_err(|_| ())?;
    if n > max {
        return Err(());
    }
    Ok(n)
}

/// The directives of one `*_extra` table, and where each name is written.
pub(super) type ExtraTable = (Vec<(String, String)>, Vec<(String, Range<usize>)>);

pub(super) fn decode_extra(
    reader: &TableReader<'_, '_>,
    key: &str,
    reserved: &[(&str, &str)],
    diags: &mut Diagnostics<'_>,
) -> ExtraTable {
    let mut out = Vec::new();
    let mut names = Vec::new();
    let Some(table) = reader.table(key, "{ LimitNOFILE = \"65536\" }", diags) else {
        return (out, names);
    };
    // Keep the file's order: toml's map is sorted, spans are not.
    let mut entries: Vec<_> = table.value.iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    for (name, value) in entries {
        let name_str: &str = name.get_ref();
        let path = reader.path(&format!("{key}.{name_str}"));
        if let Err(message) = naming::check_directive_name(name_str) {
            diags.error(name.span(), &path, message, None);
            continue;
        }
        if name_str.starts_with("X-Jobctl") {
            diags.error(
                name.span(),
                &path,
                "X-Jobctl-* keys are jobctl's ownership marks",
                Some("use another name, e.g. X-Team-Owner".into()),
            );
            continue;
        }
        if let Some((_, hint)) = reserved.iter().find(|(d, _)| *d == name_str) {
            let hint = hint.to_string();
            diags.error(
                name.span(),
                &path,
                format!("{name_str}= is set by jobctl"),
                Some(hint),
            );
            continue;
        }
        let values: Vec<(String, Range<usize>)> = match value.get_ref() {
            DeValue::Array(items) => items
                .iter()
                .filter_map(|item| scalar_text(item.get_ref()).map(|t| (t, item.span())))
                .collect(),
            other => match scalar_text(other) {
                Some(t) => vec![(t, value.span())],
                None => Vec::new(),
            },
        };
        if values.is_empty() && !matches!(value.get_ref(), DeValue::Array(a) if a.is_empty()) {
            diags.error(
                value.span(),
                &path,
                format!(
                    "expected a string or an array of strings, found {}",
                    walk::type_name(value.get_ref())
                ),
                Some(format!("e.g. {name_str} = \"value\"")),
            );
            continue;
        }
        names.push((name_str.to_string(), name.span()));
        for (text, span) in values {
            match escape::check_raw_directive_value(&text) {
                Ok(()) => out.push((name_str.to_string(), text)),
                Err(err) => diags.error(span, &path, format!("the value {err}"), Some("a directive is one line; use an array for several lines of the same directive".into())),
            }
        }
    }
    (out, names)
}

pub(super) fn scalar_text(value: &DeValue<'_>) -> Option<String> {
    match value {
        DeValue::String(s) => Some(s.to_string()),
        DeValue::Integer(i) => Some(i.as_str().replace('_', "")),
        DeValue::Float(f) => Some(f.as_str().to_string()),
        DeValue::Boolean(b) => Some(if *b { "yes" } else { "no" }.to_string()),
        _ => None,
    }
}

pub(super) fn decode_units(
    reader: &TableReader<'_, '_>,
    key: &str,
    diags: &mut Diagnostics<'_>,
) -> Option<Vec<String>> {
    reader.raw(key)?;
    let mut out = Vec::new();
    for (index, unit) in reader
        .string_list(key, "[\"network-online.target\"]", diags)
        .into_iter()
        .enumerate()
    {
        match naming::check_unit_name(&unit.value) {
            Ok(()) => out.push(unit.value),
            Err(message) => diags.error(
                unit.span,
                &reader.path(&format!("{key}[{index}]")),
                message,
                Some("name a unit with its type, e.g. \"network-online.target\"".into()),
            ),
        }
    }
    Some(out)
}

/// `on_success`/`on_failure`: each entry a job of the same folder (a job
/// name) or a unit (a name with its type suffix, as before jobs could be
/// named: `notify@%n.service`), remembered with where it is written (the
/// folder-wide checks, [`chain_problems`], report there).
pub(super) fn decode_chain(
    reader: &TableReader<'_, '_>,
    key: &str,
    diags: &mut Diagnostics<'_>,
) -> Option<Sp<Vec<Chained>>> {
    let span = reader.raw(key)?.span();
    let mut out = Vec::new();
    let entries = reader.string_list(key, "[\"publish-report\"]", diags);
    for (index, entry) in entries.into_iter().enumerate() {
        let path = reader.path(&format!("{key}[{index}]"));
        match ChainTarget::parse(&entry.value) {
            Ok(target) => {
                let (line, column) = diags.source().line_column(entry.span.start);
                out.push(Chained {
                    target,
                    at: Place {
                        file: diags.file().to_string(),
                        line,
                        column,
                        key: path,
                    },
                });
            }
            Err(message) => diags.error(
                entry.span,
                &path,
                message,
                Some(
                    "name another job of this folder (\"cleanup\"), or a unit with its type \
                     (\"notify@%n.service\")"
                        .into(),
                ),
            ),
        }
    }
    Some(Sp::new(out, span))
}

pub(super) fn decode_retry(
    reader: &TableReader<'_, '_>,
    diags: &mut Diagnostics<'_>,
) -> Option<Sp<Retry>> {
    let table = reader.table("retry", "{ attempts = 3, delay = \"30s\" }", diags)?;
    let inner = TableReader::new(
        &reader.path("retry"),
        table.value,
        &["attempts", "delay", "backoff", "max_delay"],
        &[
            (
                "max_attempts",
                "use `attempts` (attempts in all, the first run included)",
            ),
            ("interval", "use `delay`"),
        ],
        diags,
    );
    let attempts = match inner.integer("attempts", "3", diags) {
        Some(a) if (1..=i64::from(MAX_RETRY_ATTEMPTS)).contains(&a.value) => a.value as u32,
        Some(a) => {
            diags.error(
                a.span,
                &inner.path("attempts"),
                format!("attempts = {} is out of range", a.value),
                Some(format!(
                    "attempts counts every run, the first included: use 1 to {MAX_RETRY_ATTEMPTS}"
                )),
            );
            return None;
        }
        None => {
            if inner.raw("attempts").is_none() {
                diags.error(
                    table.span.clone(),
                    &reader.path("retry"),
                    "`retry` needs `attempts`",
                    Some("e.g. retry = { attempts = 3, delay = \"30s\" }".into()),
                );
            }
            return None;
        }
    };
    let delay = inner
        .duration("delay", "\"30s\"", diags)
        .map_or(Timespan::from_secs(30), |d| d.value);
    let backoff = match inner.float("backoff", "2.0", diags) {
        Some(b) if (1.0..=10.0).contains(&b.value) => b.value,
        Some(b) => {
            diags.error(
                b.span,
                &inner.path("backoff"),
                format!("backoff = {} is out of range", b.value),
                Some(
                    "use 1.0 (a constant delay) to 10.0; 2.0 doubles the delay after each attempt"
                        .into(),
                ),
            );
            return None;
        }
        None => 1.0,
    };
    let max_delay = inner
        .duration("max_delay", "\"10m\"", diags)
        .map(|d| d.value);
    if delay.is_infinite() || max_delay.is_some_and(|m| m.is_infinite()) {
        diags.error(
            table.span.clone(),
            &reader.path("retry"),
            "retry delays must be finite",
            None,
        );
        return None;
    }
    Some(Sp::new(
        Retry {
            attempts,
            delay,
            backoff,
            max_delay,
        },
        table.span,
    ))
}

/// Decodes the `[defaults]` table of the global configuration.
pub(crate) fn decode_defaults(
    table: &DeTable<'_>,
    mode: Mode,
    zones: &dyn ZoneLookup,
    diags: &mut Diagnostics<'_>,
) -> JobSpec {
    let reader = TableReader::new("defaults", table, DEFAULTABLE_KEYS, KEY_ALIASES, diags);
    JobSpec::decode(&reader, mode, zones, diags)
}
