//! Unit tests of crontab parsing and import planning.

use super::*;

#[test]
fn settings_follow_crons_grammar() {
    // Vectors checked against Debian cron's own load_env().
    let cases: &[(&str, Option<(&str, &str)>)] = &[
        ("FOO=", None),
        ("FOO=bar", Some(("FOO", "bar"))),
        ("FOO = bar ", Some(("FOO", "bar"))),
        ("'A B'=x", Some(("A B", "x"))),
        ("X=\"a b\"", Some(("X", "a b"))),
        ("X=\"a\" y", None),
        ("MAILTO=\"\"", Some(("MAILTO", ""))),
        ("X = \"q\" ", Some(("X", "q"))),
        ("X=a b c", Some(("X", "a b c"))),
        ("X= ", None),
        ("0 0 * * * x=1", None),
        ("X=y=z", Some(("X", "y=z"))),
        ("X='a'", Some(("X", "a"))),
        ("X=\"unterminated", None),
        ("\"X\"=1", Some(("X", "1"))),
    ];
    for (line, want) in cases {
        let got = parse_env(line);
        let want = want.map(|(a, b)| (a.to_string(), b.to_string()));
        assert_eq!(got, want, "{line:?}");
    }
}

#[test]
fn percent_signs_split_command_and_input() {
    assert_eq!(split_percent("echo hi"), ("echo hi".to_string(), None));
    assert_eq!(
        split_percent("mail -s x root%line 1%line 2"),
        (
            "mail -s x root".to_string(),
            Some("line 1\nline 2\n".to_string())
        )
    );
    assert_eq!(
        split_percent(r"date +\%F%a\%b%"),
        ("date +%F".to_string(), Some("a%b\n".to_string()))
    );
    assert_eq!(split_percent(r"echo a\\b"), (r"echo a\b".to_string(), None));
    assert_eq!(split_percent(r"echo \x"), (r"echo \x".to_string(), None));
    assert_eq!(split_percent("cmd%"), ("cmd".to_string(), None));
    assert_eq!(
        split_percent(r"cmd%a\\b"),
        ("cmd".to_string(), Some("a\\\\b\n".to_string()))
    );
    assert_eq!(
        split_percent("cmd%x%"),
        ("cmd".to_string(), Some("x\n".to_string()))
    );
}

const USER_CRONTAB: &str = "\
# m h dom mon dow command
SHELL=/bin/bash
PATH=/usr/local/bin:/usr/bin:/bin
MAILTO=ops@example.com

# Refresh the warehouse
# (nightly)
15 2 * * * cd /opt/warehouse && ./refresh.sh --full
*/15 9-17 * * mon-fri /usr/local/bin/batch-worker
0 12 1 * Mon /usr/bin/python3 /opt/report/monthly.py send
CRON_TZ=Asia/Hong_Kong
0 9 1 * * /usr/bin/python3 /opt/report/monthly.py send
@reboot /usr/local/bin/warm-cache
0 0 L * * /usr/local/bin/month-end
FOO=
0 3 * * * mail -s report root%Report follows%done
";

#[test]
fn parses_a_user_crontab() {
    let crontab = parse(USER_CRONTAB, CrontabFormat::User);
    assert_eq!(crontab.entries.len(), 6);
    let first = &crontab.entries[0];
    assert_eq!(first.line, 8);
    assert_eq!(first.schedule, "15 2 * * *");
    assert_eq!(first.command, "cd /opt/warehouse && ./refresh.sh --full");
    assert_eq!(first.comment, ["Refresh the warehouse", "(nightly)"]);
    assert_eq!(
        first.environment,
        [
            ("SHELL".to_string(), "/bin/bash".to_string()),
            (
                "PATH".to_string(),
                "/usr/local/bin:/usr/bin:/bin".to_string()
            ),
            ("MAILTO".to_string(), "ops@example.com".to_string()),
        ]
    );
    assert_eq!(crontab.entries[1].schedule, "*/15 9-17 * * mon-fri");
    assert!(crontab.entries[1].comment.is_empty());
    assert_eq!(crontab.entries[4].schedule, "@reboot");
    let last = crontab.entries.last().unwrap();
    assert_eq!(last.command, "mail -s report root");
    assert_eq!(last.stdin.as_deref(), Some("Report follows\ndone\n"));
    // Two lines cron cannot use.
    let problems: Vec<(usize, &str)> = crontab
        .problems
        .iter()
        .map(|p| (p.line, p.message.as_str()))
        .collect();
    assert_eq!(problems.len(), 2);
    assert_eq!(problems[0].0, 14);
    assert!(problems[0].1.contains("Quartz extension"), "{problems:?}");
    assert_eq!(problems[1].0, 15);
    assert!(
        crontab.problems[1]
            .hint
            .as_deref()
            .unwrap_or_default()
            .contains("NAME=\"\"")
    );
}

#[test]
fn parses_a_system_crontab() {
    let text = "\
SHELL=/bin/sh
17 *\t* * *\troot    cd / && run-parts --report /etc/cron.hourly
25 6 * * * www-data test -x /usr/sbin/anacron || ( cd / && run-parts --report /etc/cron.daily )
0 5 * * *
";
    let crontab = parse(text, CrontabFormat::System);
    assert_eq!(crontab.entries.len(), 2);
    assert_eq!(crontab.entries[0].user.as_deref(), Some("root"));
    assert_eq!(crontab.entries[0].schedule, "17 * * * *");
    assert_eq!(
        crontab.entries[0].command,
        "cd / && run-parts --report /etc/cron.hourly"
    );
    assert_eq!(crontab.entries[1].user.as_deref(), Some("www-data"));
    assert_eq!(crontab.problems.len(), 1);
    assert_eq!(crontab.problems[0].line, 4);
}

#[test]
fn names_come_from_commands() {
    let cases = [
        ("cd /opt/warehouse && ./refresh.sh --full", "refresh"),
        ("/usr/local/bin/batch-worker", "batch-worker"),
        (
            "/usr/bin/python3 /opt/report/monthly.py send",
            "monthly-send",
        ),
        (
            "sudo -u app /usr/bin/php /srv/artisan schedule:run",
            "artisan-schedule-run",
        ),
        ("nice -n 10 /usr/bin/backup --all", "backup"),
        (
            "test -x /usr/sbin/anacron || ( cd / && run-parts --report /etc/cron.daily )",
            "anacron",
        ),
        ("FOO=1 /usr/bin/env bash -c 'echo hi'", "echo-hi"),
        ("flock -n /tmp/lock /opt/bin/sync.sh", "sync"),
        ("$HOME/bin/x", "x"),
        ("python3 -m http.server 8000", "http.server-8000"),
        ("cd /tmp; true", "cron-job"),
        ("%%%", "cron-job"),
        ("/opt/..hidden", "hidden"),
    ];
    for (command, want) in cases {
        assert_eq!(derive_name(command), want, "{command}");
    }
    let long = format!("/bin/{}", "x".repeat(200));
    assert_eq!(derive_name(&long).len(), 48);
}

#[test]
fn import_writes_one_job_per_line() {
    let crontab = parse(USER_CRONTAB, CrontabFormat::User);
    let plan = import(
        &crontab,
        &ImportOptions {
            source_name: "alice.crontab".to_string(),
            user: Some("alice".to_string()),
            timeout: None,
            ..Default::default()
        },
    );
    let names: Vec<&str> = plan.jobs.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "refresh",
            "batch-worker",
            "monthly-send",
            "monthly-send-2",
            "warm-cache",
            "mail-report"
        ]
    );
    assert_eq!(plan.skipped.len(), 2);
    assert_eq!(plan.notes.len(), 2, "{:?}", plan.notes);
    assert!(plan.notes[0].contains("SHELL=/bin/bash: commands run as `/bin/bash -c COMMAND`"));
    assert!(plan.notes[1].contains("MAILTO became mail channels"));

    let refresh = &plan.jobs[0];
    assert_eq!(
        refresh.toml,
        "\
# Imported by jobctl from alice.crontab line 8:
# 15 2 * * * cd /opt/warehouse && ./refresh.sh --full

description = \"Refresh the warehouse (nightly)\"
cron = \"15 2 * * *\"
user = \"alice\"
notify = [\"mailto-ops-example-com\"]
command = [\"/bin/bash\", \"-c\", \"cd /opt/warehouse && ./refresh.sh --full\"]

[environment]
PATH = \"/usr/local/bin:/usr/bin:/bin\"
SHELL = \"/bin/bash\"

[metadata]
mailto = \"ops@example.com\"
source = \"alice.crontab line 8\"
"
    );
    assert_eq!(
        plan.jobs[2].on_calendar,
        ["*-*-01 12:00:00", "Mon *-*-* 12:00:00"]
    );
    assert!(
        plan.jobs[3]
            .toml
            .contains("timezone = \"Asia/Hong_Kong\"\n")
    );
    assert!(plan.jobs[4].notes.iter().any(|n| n.contains("@reboot")));
    assert!(
        plan.jobs[5]
            .toml
            .contains("stdin = \"\"\"\nReport follows\ndone\n\"\"\"")
            || plan.jobs[5]
                .toml
                .contains("stdin = \"Report follows\\ndone\\n\"")
    );
}

#[test]
fn default_shell_and_path() {
    let crontab = parse("0 1 * * * /usr/bin/true\n", CrontabFormat::User);
    let plan = import(&crontab, &ImportOptions::default());
    let toml = &plan.jobs[0].toml;
    assert!(toml.contains("shell = \"/usr/bin/true\"\n"), "{toml}");
    assert!(toml.contains("PATH = \"/usr/bin:/bin\"\n"), "{toml}");
    assert!(toml.contains("source = \"crontab line 1\""), "{toml}");
    assert!(!toml.contains("user ="), "{toml}");
}

#[test]
fn tz_becomes_the_timezone_with_a_note() {
    let crontab = parse(
        "TZ=:Europe/Berlin\n0 1 * * * /usr/bin/true\n",
        CrontabFormat::User,
    );
    let plan = import(&crontab, &ImportOptions::default());
    assert!(plan.jobs[0].toml.contains("timezone = \"Europe/Berlin\"\n"));
    assert!(
        plan.jobs[0].toml.contains("TZ = \":Europe/Berlin\""),
        "the command still sees TZ"
    );
    assert!(plan.jobs[0].notes[0].contains("Debian's cron schedules in the system zone"));
}

#[test]
fn no_panic_on_odd_crontabs() {
    for text in [
        "",
        "\n\n",
        "@",
        "@reboot",
        "*",
        "= =",
        "\"",
        "'",
        "0 0 * * * %",
        "0 0 * * * \\",
        "X=\"\u{1}\"\n* * * * * \u{7}",
    ] {
        for format in [CrontabFormat::User, CrontabFormat::System] {
            let crontab = parse(text, format);
            let _ = import(&crontab, &ImportOptions::default());
        }
    }
}

#[test]
fn a_user_crontab_runs_as_its_user_never_root_by_default() {
    use crate::context::Mode::{System, User};
    let file = |path: &'static str, uid: u32, owner: Option<&'static str>| CrontabOrigin::File {
        path,
        uid,
        owner,
    };
    let user_of = |r: Result<JobUser, JobUserError>| r.map(|u| u.user).map_err(|e| e.message);

    // --job-user wins for a user crontab, whatever the file.
    assert_eq!(
        user_of(job_user(
            CrontabFormat::User,
            System,
            Some("alice"),
            CrontabOrigin::Stream
        )),
        Ok(Some("alice".to_string()))
    );
    // A pipe has no owner: refused, with the way out.
    let e = job_user(CrontabFormat::User, System, None, CrontabOrigin::Stream).unwrap_err();
    assert!(e.message.contains("standard input"), "{}", e.message);
    assert!(e.hint.contains("--job-user USER (-u USER)"), "{}", e.hint);
    // cron's spool: the file's name is the user, who must own it.
    for spool in ["/var/spool/cron/crontabs/alice", "/var/spool/cron/alice"] {
        assert_eq!(
            user_of(job_user(
                CrontabFormat::User,
                System,
                None,
                file(spool, 1000, Some("alice"))
            )),
            Ok(Some("alice".to_string())),
            "{spool}"
        );
    }
    assert_eq!(
        user_of(job_user(
            CrontabFormat::User,
            System,
            None,
            file("/var/spool/cron/crontabs/root", 0, Some("root"))
        )),
        Ok(Some("root".to_string()))
    );
    let e = job_user(
        CrontabFormat::User,
        System,
        None,
        file("/var/spool/cron/crontabs/alice", 0, Some("root")),
    )
    .unwrap_err();
    assert!(
        e.message.contains("owned by root, not by alice"),
        "{}",
        e.message
    );
    // Elsewhere: a file a user owns is that user's; a root-owned one may be
    // a copy of anyone's, and a uid without a name names nobody.
    assert_eq!(
        user_of(job_user(
            CrontabFormat::User,
            System,
            None,
            file("/home/bob/cron.txt", 1001, Some("bob"))
        )),
        Ok(Some("bob".to_string()))
    );
    let e = job_user(
        CrontabFormat::User,
        System,
        None,
        file("/root/alice.cron", 0, Some("root")),
    )
    .unwrap_err();
    assert!(e.message.contains("owned by root"), "{}", e.message);
    assert!(e.hint.contains("--job-user root"), "{}", e.hint);
    let e = job_user(
        CrontabFormat::User,
        System,
        None,
        file("/srv/x", 4242, None),
    )
    .unwrap_err();
    assert!(e.message.contains("uid 4242"), "{}", e.message);
    // A nested path under the spool is not a spool crontab.
    assert!(
        job_user(
            CrontabFormat::User,
            System,
            None,
            file("/var/spool/cron/crontabs/x/alice", 0, Some("root"))
        )
        .is_err()
    );

    // System crontabs name their users per line.
    assert_eq!(
        user_of(job_user(
            CrontabFormat::System,
            System,
            None,
            CrontabOrigin::Stream
        )),
        Ok(None)
    );
    assert!(
        job_user(
            CrontabFormat::System,
            System,
            Some("alice"),
            CrontabOrigin::Stream
        )
        .is_err()
    );
    // Per-user mode: the caller's manager runs the jobs.
    assert_eq!(
        user_of(job_user(
            CrontabFormat::User,
            User,
            None,
            CrontabOrigin::Stream
        )),
        Ok(None)
    );
    assert!(
        job_user(
            CrontabFormat::User,
            User,
            Some("alice"),
            CrontabOrigin::Stream
        )
        .is_err()
    );
    assert!(job_user(CrontabFormat::System, User, None, CrontabOrigin::Stream).is_err());
}

#[test]
fn every_imported_job_states_its_timeout() {
    let crontab = parse("0 0 * * * /bin/true\n", CrontabFormat::User);
    let options = |timeout| ImportOptions {
        source_name: "c".to_string(),
        user: Some("alice".to_string()),
        timeout,
        ..Default::default()
    };
    let plan = import(&crontab, &options(Some(IMPORT_TIMEOUT)));
    assert!(
        plan.jobs[0].toml.contains("\ntimeout = \"1h\"\n"),
        "{}",
        plan.jobs[0].toml
    );
    assert!(
        plan.notes[0].starts_with("timeout = \"1h\" in every job"),
        "{:?}",
        plan.notes
    );
    let plan = import(&crontab, &options(Some(Timespan::INFINITY)));
    assert!(plan.jobs[0].toml.contains("\ntimeout = \"infinity\"\n"));
    assert!(
        plan.notes[0].contains("later runs wait"),
        "{:?}",
        plan.notes
    );
    let plan = import(&crontab, &options(None));
    assert!(!plan.jobs[0].toml.contains("timeout"));
}

#[test]
fn mailto_values_become_addresses() {
    assert_eq!(parse_mailto(""), Mailto::Off);
    assert_eq!(parse_mailto("  "), Mailto::Off);
    assert_eq!(
        parse_mailto("ops@example.com"),
        Mailto::To(vec!["ops@example.com".into()])
    );
    // A list, as sendmail takes it; duplicates once.
    assert_eq!(
        parse_mailto("ops@example.com, dba@example.com,ops@example.com"),
        Mailto::To(vec!["ops@example.com".into(), "dba@example.com".into()])
    );
    // A local user, as cron mails it: that user's mailbox on this host.
    assert_eq!(
        parse_mailto("root"),
        Mailto::To(vec!["root@localhost".into()])
    );
    for bad in [
        "Ops <ops@example.com>",
        "a b@c",
        "x@y\r\nBcc: z@w",
        "\"ops\"@x",
    ] {
        assert!(
            matches!(parse_mailto(bad), Mailto::Unusable(_)),
            "{bad:?}: {:?}",
            parse_mailto(bad)
        );
    }
}

/// The `notify` line of an imported job file.
fn notify_line(job: &ImportedJob) -> Option<&str> {
    job.toml.lines().find(|l| l.starts_with("notify = "))
}

#[test]
fn each_mailto_applies_to_the_lines_after_it() {
    let text = "\
0 1 * * * /bin/before-any
MAILTO=ops@example.com
0 2 * * * /bin/first
0 3 * * * /bin/second
MAILTO=\"dba@example.com,ops@example.com\"
0 4 * * * /bin/third
MAILTO=\"\"
0 5 * * * /bin/quiet
MAILTO=root
0 6 * * * /bin/local
MAILTO=ops@example.com
0 7 * * * /bin/again
";
    let plan = import(&parse(text, CrontabFormat::User), &ImportOptions::default());
    let lines: Vec<(&str, Option<&str>)> = plan
        .jobs
        .iter()
        .map(|j| (j.name.as_str(), notify_line(j)))
        .collect();
    assert_eq!(
        lines,
        [
            // No MAILTO yet: the configuration's default channels apply.
            ("before-any", None),
            ("first", Some("notify = [\"mailto-ops-example-com\"]")),
            ("second", Some("notify = [\"mailto-ops-example-com\"]")),
            (
                "third",
                Some("notify = [\"mailto-dba-example-com-ops-example-com\"]")
            ),
            // cron's "no mail".
            ("quiet", Some("notify = []")),
            ("local", Some("notify = [\"mailto-root-localhost\"]")),
            // The same addresses again: the same channel.
            ("again", Some("notify = [\"mailto-ops-example-com\"]")),
        ]
    );
    let channels: Vec<(&str, &[String], &[usize], bool)> = plan
        .channels
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.mail.as_slice(),
                c.lines.as_slice(),
                c.in_config,
            )
        })
        .collect();
    assert_eq!(
        channels,
        [
            (
                "mailto-ops-example-com",
                &["ops@example.com".to_string()][..],
                &[3, 4, 12][..],
                false
            ),
            (
                "mailto-dba-example-com-ops-example-com",
                &["dba@example.com".to_string(), "ops@example.com".to_string()][..],
                &[6][..],
                false
            ),
            (
                "mailto-root-localhost",
                &["root@localhost".to_string()][..],
                &[10][..],
                false
            ),
        ]
    );
    assert_eq!(
        plan.channels[1].toml(),
        "[notify.channels.mailto-dba-example-com-ops-example-com]\n\
         mail = [\"dba@example.com\", \"ops@example.com\"]\n"
    );
    // The metadata keeps what the crontab said.
    assert!(plan.jobs[1].toml.contains("mailto = \"ops@example.com\""));
    // The note says how jobctl's mail differs from cron's.
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("cron mailed a job's output whenever it printed anything")),
        "{:?}",
        plan.notes
    );
}

#[test]
fn a_channel_the_configuration_has_is_used_as_it_is() {
    let text = "MAILTO=dba@example.com,ops@example.com\n0 2 * * * /bin/first\n";
    let options = ImportOptions {
        mail_channels: [
            ("pager".to_string(), vec!["pager@example.com".to_string()]),
            // The same addresses in another order.
            (
                "team".to_string(),
                vec!["ops@example.com".to_string(), "dba@example.com".to_string()],
            ),
        ]
        .into(),
        ..Default::default()
    };
    let plan = import(&parse(text, CrontabFormat::User), &options);
    assert_eq!(notify_line(&plan.jobs[0]), Some("notify = [\"team\"]"));
    assert!(plan.channels[0].in_config, "{:?}", plan.channels);
    // A new name never takes one the configuration uses.
    let options = ImportOptions {
        mail_channels: [(
            "mailto-ops-example-com".to_string(),
            vec!["other@example.com".to_string()],
        )]
        .into(),
        ..Default::default()
    };
    let text = "MAILTO=ops@example.com\n0 2 * * * /bin/first\n";
    let plan = import(&parse(text, CrontabFormat::User), &options);
    assert_eq!(
        notify_line(&plan.jobs[0]),
        Some("notify = [\"mailto-ops-example-com-2\"]")
    );
    assert!(!plan.channels[0].in_config);
}

#[test]
fn a_mailto_jobctl_cannot_send_to_is_a_note() {
    let text = "MAILTO=Ops Team <ops@example.com>\n0 2 * * * /bin/first\n";
    let plan = import(&parse(text, CrontabFormat::User), &ImportOptions::default());
    assert_eq!(notify_line(&plan.jobs[0]), None);
    assert!(plan.channels.is_empty());
    assert!(
        plan.notes
            .iter()
            .any(|n| n
                .starts_with("MAILTO=Ops Team <ops@example.com> is not a list of mail addresses")),
        "{:?}",
        plan.notes
    );
}

#[test]
fn channel_names_are_valid_and_bounded() {
    let long = vec![format!("{}@example.com", "x".repeat(200))];
    let name = mail_channel_name(&long, &|_| false);
    assert!(crate::notify::check_channel_name(&name).is_ok(), "{name}");
    let name = mail_channel_name(&long, &|n| !n.ends_with("-3"));
    assert!(
        name.ends_with("-3") && crate::notify::check_channel_name(&name).is_ok(),
        "{name}"
    );
    let name = mail_channel_name(&["Ops+Alerts@Example.COM".to_string()], &|_| false);
    assert_eq!(name, "mailto-ops-alerts-example-com");
}
