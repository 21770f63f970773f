use super::*;
use crate::render::UnitFile;

fn unit(job: &str, kind: &str, body: &str) -> UnitFile {
    UnitFile {
        name: format!("jobctl-{job}.{kind}"),
        contents: format!("[Unit]\n{OWNER_KEY}={job}\n{HASH_KEY}=h\n{body}\n"),
    }
}

fn job(name: &str, schedule: &str) -> RenderedJob {
    RenderedJob {
        job: name.into(),
        service: unit(name, "service", "[Service]\nExecStart=/bin/true"),
        timer: Some(unit(
            name,
            "timer",
            &format!("[Timer]\nOnCalendar={schedule}"),
        )),
        timer_enabled: true,
        not_after: None,
        hash: format!("hash-{name}-{schedule}"),
        users_folder: None,
    }
}

fn on_disk(jobs: &[RenderedJob]) -> Actual {
    let mut actual = Actual::default();
    for j in jobs {
        actual.units.push(DiskUnit {
            name: j.service.name.clone(),
            contents: Some(j.service.contents.clone()),
        });
        if let Some(t) = &j.timer {
            actual.units.push(DiskUnit {
                name: t.name.clone(),
                contents: Some(t.contents.clone()),
            });
            actual.states.insert(
                t.name.clone(),
                UnitState {
                    enabled: true,
                    active: true,
                    failed: false,
                },
            );
        }
    }
    actual
}

/// A timer that was on, turned off.
fn turned_off() -> TimerSteps {
    TimerSteps {
        stop: true,
        disable: true,
        ..Default::default()
    }
}

fn now() -> jiff::Timestamp {
    "2026-06-01T00:00:00Z".parse().unwrap()
}

fn plan_of(desired: &[RenderedJob], actual: &Actual) -> Plan {
    plan(desired, actual, &BTreeMap::new(), now(), true).unwrap()
}

#[test]
fn ownership_is_read_from_the_unit_section_only() {
    let o = ownership(
        "[Unit]\nDescription=x\nX-Jobctl-Job=backup\nX-Jobctl-Source=/etc/jobctl/jobs.d/backup.toml\nX-Jobctl-Hash=abc\n[Service]\n",
    )
    .unwrap();
    assert_eq!(
        o,
        Ownership {
            job: "backup".into(),
            hash: Some("abc".into()),
            source: Some("/etc/jobctl/jobs.d/backup.toml".into()),
        }
    );
    assert_eq!(ownership("[Service]\nX-Jobctl-Job=backup\n"), None);
    assert_eq!(ownership("[Unit]\nDescription=X-Jobctl-Job=backup\n"), None);
    assert_eq!(ownership("[Unit]\nX-Jobctl-Job=\n"), None);
}

#[test]
fn new_jobs_are_created_enabled_and_started() {
    let p = plan_of(&[job("a", "daily")], &Actual::default());
    let a = &p.jobs[0];
    assert_eq!(a.change, Change::Create);
    assert_eq!(a.writes.len(), 2);
    assert_eq!(
        a.timer_steps,
        TimerSteps {
            enable: true,
            start: true,
            ..Default::default()
        }
    );
    assert!(p.needs_reload() && p.changed());
}

#[test]
fn reapplying_changes_nothing_and_needs_no_reload() {
    let jobs = [job("a", "daily"), job("b", "hourly")];
    let p = plan_of(&jobs, &on_disk(&jobs));
    assert!(!p.changed(), "{p:#?}");
    assert!(!p.needs_reload());
    assert!(p.jobs.iter().all(|j| j.change == Change::Unchanged));
}

#[test]
fn a_changed_timer_is_restarted_and_an_unchanged_one_left_alone() {
    let old = [job("a", "daily"), job("b", "hourly")];
    let new = [job("a", "weekly"), job("b", "hourly")];
    let p = plan_of(&new, &on_disk(&old));
    assert_eq!(p.jobs[0].change, Change::Update);
    assert_eq!(
        p.jobs[0].timer_steps,
        TimerSteps {
            restart: true,
            ..Default::default()
        }
    );
    assert_eq!(p.jobs[1].timer_steps, TimerSteps::default());
    assert_eq!(p.timers_where(|s| s.restart), ["jobctl-a.timer"]);
}

#[test]
fn a_service_only_change_does_not_touch_the_timer() {
    let old = [job("a", "daily")];
    let mut new = job("a", "daily");
    new.service = unit("a", "service", "[Service]\nExecStart=/bin/false");
    let mut actual = on_disk(&old);
    actual.states.insert(
        new.service.name.clone(),
        UnitState {
            active: true,
            ..Default::default()
        },
    );
    let p = plan_of(&[new], &actual);
    assert_eq!(p.jobs[0].writes.len(), 1);
    assert!(!p.jobs[0].timer_steps.any());
    assert!(p.jobs[0].running);
    assert!(p.jobs[0].notes[0].contains("next run"));
}

/// A job file rendered for real (the hand-made units above cannot show
/// what the renderer puts into both units).
fn rendered(body: &str) -> RenderedJob {
    crate::render::tests::rendered(body)
}

/// Every key that concerns only the service, each changed on its own.
pub(crate) const SERVICE_ONLY_CHANGES: &[(&str, &str)] = &[
    ("timeout", "timeout = \"2h\"\n"),
    ("command", "command = [\"/bin/false\"]\n"),
    ("environment", "[environment]\nMODE = \"fast\"\n"),
    ("user", "user = \"nobody\"\n"),
    ("group", "group = \"nogroup\"\n"),
    ("dynamic_user", "dynamic_user = true\n"),
    ("nice", "nice = 5\n"),
    ("memory_max", "memory_max = \"1G\"\n"),
    ("cpu_quota", "cpu_quota = \"50%\"\n"),
    ("io_weight", "io_weight = 50\n"),
    ("private_tmp", "private_tmp = true\n"),
    ("protect_system", "protect_system = \"strict\"\n"),
    ("no_new_privileges", "no_new_privileges = true\n"),
    ("description", "description = \"Nightly copy\"\n"),
    ("working_directory", "working_directory = \"/srv\"\n"),
    ("retry", "[retry]\nattempts = 3\n"),
    ("output_limit", "output_limit = \"1M\"\n"),
    ("after", "after = [\"network-online.target\"]\n"),
    ("service_extra", "[service_extra]\nLimitNOFILE = \"4096\"\n"),
];

#[test]
fn a_service_only_change_of_a_real_job_file_never_restarts_the_timer() {
    let base = "every = \"7min\"\n";
    let command = "command = [\"/bin/true\"]\n";
    let before = rendered(&format!("{command}{base}"));
    for (key, change) in SERVICE_ONLY_CHANGES {
        let command = if *key == "command" { "" } else { command };
        let after = rendered(&format!("{command}{base}{change}"));
        assert_ne!(after.service, before.service, "{key}: the service changed");
        let p = plan_of(
            std::slice::from_ref(&after),
            &on_disk(std::slice::from_ref(&before)),
        );
        let a = &p.jobs[0];
        assert_eq!(a.change, Change::Update, "{key}");
        assert_eq!(a.timer_steps, TimerSteps::default(), "{key}: {a:#?}");
    }
    // Units written by jobctl before each unit had its own hash (one hash
    // of both units in both files): the timer file is rewritten, not
    // restarted.
    let mut old = before.clone();
    for unit in [&mut old.service, old.timer.as_mut().unwrap()] {
        unit.contents = unit
            .contents
            .lines()
            .map(|l| match l.strip_prefix("X-Jobctl-Hash=") {
                Some(_) => format!("X-Jobctl-Hash={}\n", before.hash),
                None => format!("{l}\n"),
            })
            .collect();
    }
    let p = plan_of(
        std::slice::from_ref(&before),
        &on_disk(std::slice::from_ref(&old)),
    );
    assert_eq!(p.jobs[0].writes.len(), 2, "{p:#?}");
    assert_eq!(p.jobs[0].timer_steps, TimerSteps::default());

    // A schedule change does restart it.
    let after = rendered("command = [\"/bin/true\"]\nevery = \"9min\"\n");
    let p = plan_of(
        std::slice::from_ref(&after),
        &on_disk(std::slice::from_ref(&before)),
    );
    assert!(p.jobs[0].timer_steps.restart);
}

#[test]
fn removed_jobs_are_stopped_disabled_deleted_and_reset_unless_no_prune() {
    let old = [job("a", "daily"), job("gone", "daily")];
    let mut actual = on_disk(&old);
    actual.states.insert(
        "jobctl-gone.service".into(),
        UnitState {
            active: true,
            ..Default::default()
        },
    );
    let p = plan_of(&old[..1], &actual);
    let gone = &p.jobs[1];
    assert_eq!(gone.change, Change::Remove);
    assert_eq!(gone.timer_steps, turned_off());
    assert_eq!(gone.deletes, ["jobctl-gone.service", "jobctl-gone.timer"]);
    assert_eq!(gone.reset_failed.len(), 2);
    assert!(gone.running && gone.notes[0].contains("not stopped"));

    let kept = plan(&old[..1], &actual, &BTreeMap::new(), now(), false).unwrap();
    assert_eq!(kept.jobs[1].change, Change::Orphaned);
    assert!(!kept.changed());
}

#[test]
fn foreign_units_are_never_touched_and_collisions_are_errors() {
    let mut actual = Actual::default();
    actual.units.push(DiskUnit {
        name: "jobctl-a.timer".into(),
        contents: Some("[Timer]\nOnCalendar=daily\n".into()),
    });
    actual.units.push(DiskUnit {
        name: "other.service".into(),
        contents: None,
    });
    actual.elsewhere.insert(
        "jobctl-b.service".into(),
        "/usr/lib/systemd/system/jobctl-b.service".into(),
    );
    let errs = plan(
        &[job("a", "daily"), job("b", "daily")],
        &actual,
        &BTreeMap::new(),
        now(),
        true,
    )
    .unwrap_err();
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(
        matches!(&errs[0], PlanError::ForeignInFolder { unit, .. } if unit == "jobctl-a.timer")
    );
    assert!(
        matches!(&errs[1], PlanError::ForeignElsewhere { unit, .. } if unit == "jobctl-b.service")
    );
    // Foreign units are not removed either.
    let p = plan_of(&[], &actual);
    assert!(p.jobs.is_empty());
}

#[test]
fn disabled_and_expired_jobs_have_their_timer_off() {
    let mut disabled = job("d", "daily");
    disabled.timer_enabled = false;
    let mut expired = job("e", "daily");
    expired.not_after = Some("2026-05-01T00:00:00Z".parse().unwrap());
    let mut future = job("f", "daily");
    future.not_after = Some("2027-01-01T00:00:00Z".parse().unwrap());
    let all = [disabled.clone(), expired.clone(), future.clone()];
    // From empty: nothing is enabled or started for d and e.
    let p = plan_of(&all, &Actual::default());
    assert_eq!(p.jobs[0].timer_state, TimerState::Disabled);
    assert!(!p.jobs[0].timer_steps.any());
    assert_eq!(p.jobs[1].timer_state, TimerState::Expired);
    assert!(!p.jobs[1].timer_steps.any());
    assert_eq!(p.jobs[2].timer_state, TimerState::Active);
    // Running timers get stopped and disabled.
    let p = plan_of(&all, &on_disk(&all));
    assert_eq!(p.jobs[0].timer_steps, turned_off());
    assert_eq!(p.jobs[1].timer_steps, turned_off());
    assert!(!p.jobs[2].timer_steps.any());
}

#[test]
fn operator_overrides_hold_until_the_job_file_changes() {
    let a = job("a", "daily");
    let actual = on_disk(std::slice::from_ref(&a));
    let mut overrides = BTreeMap::new();
    overrides.insert(
        "a".to_string(),
        Override {
            enabled: false,
            hash: a.hash.clone(),
        },
    );
    let p = plan(std::slice::from_ref(&a), &actual, &overrides, now(), true).unwrap();
    assert_eq!(p.jobs[0].timer_state, TimerState::DisabledByOperator);
    assert_eq!(p.jobs[0].timer_steps, turned_off());
    assert!(p.stale_overrides.is_empty());

    // The job file changed: the file's `enabled = true` wins again.
    let changed = job("a", "weekly");
    let p = plan(
        std::slice::from_ref(&changed),
        &actual,
        &overrides,
        now(),
        true,
    )
    .unwrap();
    assert_eq!(p.jobs[0].timer_state, TimerState::Active);
    assert_eq!(p.stale_overrides, ["a"]);

    // `jobctl enable` of a job whose file says enabled = false.
    let mut off = job("b", "daily");
    off.timer_enabled = false;
    let mut ov = BTreeMap::new();
    ov.insert(
        "b".to_string(),
        Override {
            enabled: true,
            hash: off.hash.clone(),
        },
    );
    let p = plan(
        std::slice::from_ref(&off),
        &Actual::default(),
        &ov,
        now(),
        true,
    )
    .unwrap();
    assert_eq!(p.jobs[0].timer_state, TimerState::Active);
    assert!(p.jobs[0].timer_steps.start);
}

#[test]
fn units_under_an_earlier_prefix_are_removed() {
    let old = job("a", "daily");
    let mut actual = on_disk(std::slice::from_ref(&old));
    // The same job, now rendered with the prefix "svc-".
    let mut renamed = old.clone();
    renamed.service.name = "svc-a.service".into();
    renamed.timer.as_mut().unwrap().name = "svc-a.timer".into();
    actual.states.insert(
        "jobctl-a.timer".into(),
        UnitState {
            enabled: true,
            active: true,
            failed: false,
        },
    );
    let p = plan_of(&[renamed], &actual);
    let gone = p
        .jobs
        .iter()
        .find(|j| j.change == Change::Remove)
        .expect("a removal");
    assert_eq!(gone.deletes, ["jobctl-a.service", "jobctl-a.timer"]);
    assert_eq!(gone.timer_steps, turned_off());
    let new = p
        .jobs
        .iter()
        .find(|j| j.change == Change::Create)
        .expect("a creation");
    assert!(new.timer_steps.start && new.timer_steps.enable);
}

#[test]
fn a_job_turned_manual_loses_its_timer() {
    let old = [job("a", "daily")];
    let mut manual = job("a", "daily");
    manual.timer = None;
    let p = plan_of(&[manual], &on_disk(&old));
    let a = &p.jobs[0];
    assert_eq!(a.timer_state, TimerState::Manual);
    assert_eq!(a.deletes, ["jobctl-a.timer"]);
    assert_eq!(a.timer_steps, turned_off());
    // The service is the same, but a unit goes: the job is updated.
    assert_eq!(a.change, Change::Update);
}

/// Each phase as its label and units, for comparing whole sequences.
fn phase_list(p: &Plan) -> Vec<(&'static str, Vec<&str>)> {
    p.phases()
        .iter()
        .map(|ph| (ph.label(), ph.units()))
        .collect()
}

#[test]
fn phases_run_in_a_safe_order_and_hold_what_the_plan_says() {
    let old = [job("b", "daily"), job("gone", "daily"), job("m", "daily")];
    let mut manual = job("m", "daily");
    manual.timer = None;
    let desired = [job("a", "daily"), job("b", "weekly"), manual];
    let p = plan_of(&desired, &on_disk(&old));
    assert_eq!(
        phase_list(&p),
        [
            ("stop timers", vec!["jobctl-gone.timer", "jobctl-m.timer"]),
            (
                "write unit files",
                vec!["jobctl-a.service", "jobctl-a.timer", "jobctl-b.timer"]
            ),
            (
                "disable timers",
                vec!["jobctl-gone.timer", "jobctl-m.timer"]
            ),
            ("enable timers", vec!["jobctl-a.timer"]),
            (
                "delete unit files",
                vec!["jobctl-gone.service", "jobctl-gone.timer", "jobctl-m.timer"]
            ),
            ("reload systemd", vec![]),
            (
                "check that systemd loaded the units",
                vec![
                    "jobctl-a.service",
                    "jobctl-a.timer",
                    "jobctl-b.service",
                    "jobctl-b.timer",
                    "jobctl-m.service"
                ]
            ),
            ("start timers", vec!["jobctl-a.timer"]),
            ("restart timers", vec!["jobctl-b.timer"]),
            (
                "reset failed units",
                vec!["jobctl-gone.service", "jobctl-gone.timer", "jobctl-m.timer"]
            ),
        ]
    );
    // The writes carry the new contents; the targets name their jobs.
    let phases = p.phases();
    let Phase::WriteUnits(writes) = &phases[1] else {
        panic!("{phases:?}")
    };
    assert!(writes[2].new.contains("OnCalendar=weekly"));
    assert!(
        writes[2]
            .old
            .as_deref()
            .is_some_and(|o| o.contains("daily"))
    );
    let Phase::StopTimers(stops) = &phases[0] else {
        panic!("{phases:?}")
    };
    assert_eq!(
        stops[0],
        Target {
            job: "gone",
            unit: "jobctl-gone.timer"
        }
    );
    assert!(
        phases
            .iter()
            .all(|ph| ph.changes_something() == !matches!(ph, Phase::CheckLoaded(_)))
    );
}

#[test]
fn nothing_to_change_has_no_phases_and_a_start_alone_no_reload() {
    let jobs = [job("a", "daily")];
    assert_eq!(plan_of(&jobs, &on_disk(&jobs)).phases(), []);
    // The files are as they should be, but the timer is not running.
    let mut actual = on_disk(&jobs);
    actual.states.insert(
        "jobctl-a.timer".into(),
        UnitState {
            enabled: true,
            active: false,
            failed: false,
        },
    );
    let p = plan_of(&jobs, &actual);
    assert_eq!(
        phase_list(&p),
        [
            (
                "check that systemd loaded the units",
                vec!["jobctl-a.service", "jobctl-a.timer"]
            ),
            ("start timers", vec!["jobctl-a.timer"]),
        ]
    );
    // Turning a timer off reloads (enablement changed) and keeps the units.
    let mut off = job("a", "daily");
    off.timer_enabled = false;
    let p = plan_of(&[off], &on_disk(&jobs));
    let labels: Vec<&str> = p.phases().iter().map(Phase::label).collect();
    assert_eq!(
        labels,
        [
            "stop timers",
            "disable timers",
            "reload systemd",
            "check that systemd loaded the units"
        ]
    );
}

#[test]
fn timers_of_jobs_that_did_not_load_are_neither_started_nor_restarted() {
    let old = [job("b", "daily")];
    let desired = [job("a", "daily"), job("b", "weekly"), job("c", "daily")];
    let p = plan_of(&desired, &on_disk(&old));
    let after: Vec<(&str, Vec<&str>)> = p
        .phases()
        .into_iter()
        .map(|ph| ph.without_jobs(&["a", "b"]))
        .map(|ph| (ph.label(), ph.units()))
        .collect();
    let units_of = |label: &str| {
        after
            .iter()
            .find(|(l, _)| *l == label)
            .map(|(_, u)| u.clone())
            .unwrap_or_default()
    };
    assert_eq!(units_of("start timers"), ["jobctl-c.timer"]);
    assert!(units_of("restart timers").is_empty());
    // Nothing else is held back: the files are written, the timers enabled.
    assert_eq!(
        units_of("enable timers"),
        ["jobctl-a.timer", "jobctl-c.timer"]
    );
    assert_eq!(units_of("write unit files").len(), 5);
}

#[test]
fn kept_units_leave_out_removed_jobs_and_deleted_units() {
    let old = [job("gone", "daily"), job("m", "daily")];
    let mut manual = job("m", "daily");
    manual.timer = None;
    let p = plan(&[manual], &on_disk(&old), &BTreeMap::new(), now(), false).unwrap();
    let kept: Vec<&str> = p.kept_units().iter().map(|t| t.unit).collect();
    // "gone" is orphaned (--no-prune): kept on disk but not expected loaded.
    assert_eq!(kept, ["jobctl-m.service"]);
}

/// Units as `on_disk` writes them, each naming `source` as its job file.
fn from_source(jobs: &[RenderedJob], source: &str) -> Actual {
    let mut actual = on_disk(jobs);
    for u in &mut actual.units {
        if let Some(c) = &mut u.contents {
            *c = c.replacen("[Unit]\n", &format!("[Unit]\n{SOURCE_KEY}={source}\n"), 1);
        }
    }
    actual
}

#[test]
fn an_invalid_job_file_leaves_its_units_exactly_as_they_are() {
    let installed = [job("good", "daily"), job("broken", "daily")];
    let actual = on_disk(&installed);
    let overrides = BTreeMap::from([(
        "broken".to_string(),
        Override {
            enabled: false,
            hash: "hash-broken-daily".into(),
        },
    )]);
    let scope = Scope {
        prune: true,
        invalid: BTreeMap::from([("broken".into(), "line 3: unknown key".into())]),
        ..Scope::default()
    };
    // `good` changes its schedule; `broken`'s file no longer validates.
    let p = plan_scoped(&[job("good", "hourly")], &actual, &overrides, now(), &scope).unwrap();
    let broken = p.jobs.iter().find(|j| j.job == "broken").unwrap();
    assert_eq!(broken.change, Change::Invalid);
    assert_eq!(broken.timer_state, TimerState::Kept);
    assert!(!broken.changes_anything(), "{broken:?}");
    assert_eq!(broken.service, "jobctl-broken.service");
    assert!(
        broken.notes[0].contains("unknown key") && broken.notes[0].contains("left as they are")
    );
    // Its override stays: the file that would decide is unreadable.
    assert!(p.stale_overrides.is_empty(), "{:?}", p.stale_overrides);
    // The valid job is applied all the same.
    let good = p.jobs.iter().find(|j| j.job == "good").unwrap();
    assert_eq!(good.change, Change::Update);
    assert!(good.timer_steps.restart);
    // No phase acts on the broken job's units, nor checks them.
    for phase in p.phases() {
        assert!(
            phase.units().iter().all(|u| !u.contains("broken")),
            "{phase:?}"
        );
    }
    // An invalid job with nothing installed is reported too.
    let fresh = Scope {
        invalid: BTreeMap::from([("typo".into(), "line 1: not valid TOML".into())]),
        ..scope
    };
    let p = plan_scoped(&installed, &actual, &BTreeMap::new(), now(), &fresh).unwrap();
    let typo = p.jobs.iter().find(|j| j.job == "typo").unwrap();
    assert_eq!((typo.change, typo.service.as_str()), (Change::Invalid, ""));
    assert!(typo.notes[0].contains("nothing of it is installed"));
}

#[test]
fn units_of_another_jobs_folder_are_left_alone_and_taken_over_by_name() {
    let mine = [job("a", "daily")];
    let theirs = [job("etc1", "daily"), job("etc2", "daily")];
    let mut actual = from_source(&theirs, "/etc/jobctl/jobs.d/x.toml");
    let ours = on_disk(&mine);
    actual.units.extend(ours.units);
    actual.states.extend(ours.states);
    let sources = installed_sources(&actual);
    assert_eq!(
        sources["etc1"].as_deref(),
        Some("/etc/jobctl/jobs.d/x.toml")
    );
    let scope = Scope {
        prune: true,
        elsewhere: BTreeMap::from([
            ("etc1".into(), "/etc/jobctl/jobs.d/etc1.toml".into()),
            ("etc2".into(), "/etc/jobctl/jobs.d/etc2.toml".into()),
        ]),
        ..Scope::default()
    };
    // The folder applied holds only `a`: the other folder's jobs stay.
    let p = plan_scoped(&mine, &actual, &BTreeMap::new(), now(), &scope).unwrap();
    assert!(!p.changed(), "{p:?}");
    assert_eq!(
        p.left_alone
            .iter()
            .map(|l| l.job.as_str())
            .collect::<Vec<_>>(),
        ["etc1", "etc2"]
    );
    assert!(p.jobs.iter().all(|j| j.job == "a"));
    // Without the scope (every unit counts as this folder's), they would go.
    let unscoped = plan_of(&mine, &actual);
    assert_eq!(
        unscoped
            .jobs
            .iter()
            .filter(|j| j.change == Change::Remove)
            .count(),
        2
    );
    // A job of the same name in this folder takes the units over.
    let p = plan_scoped(
        &[job("a", "daily"), job("etc1", "daily")],
        &actual,
        &BTreeMap::new(),
        now(),
        &scope,
    )
    .unwrap();
    let etc1 = p.jobs.iter().find(|j| j.job == "etc1").unwrap();
    assert!(
        etc1.notes.iter().any(|n| n.contains("takes it over")),
        "{etc1:?}"
    );
    assert_eq!(p.left_alone.len(), 1);
}

#[test]
fn naming_jobs_plans_those_jobs_only() {
    let installed = [job("a", "daily"), job("b", "daily"), job("gone", "daily")];
    let actual = on_disk(&installed);
    let overrides = BTreeMap::from([(
        "b".to_string(),
        Override {
            enabled: false,
            hash: "stale".into(),
        },
    )]);
    let scope = Scope {
        prune: true,
        only: Some(BTreeSet::from(["a".to_string()])),
        ..Scope::default()
    };
    let desired = [job("a", "hourly"), job("b", "hourly")];
    let p = plan_scoped(&desired, &actual, &overrides, now(), &scope).unwrap();
    assert_eq!(
        p.jobs.iter().map(|j| j.job.as_str()).collect::<Vec<_>>(),
        ["a"]
    );
    assert!(
        p.stale_overrides.is_empty(),
        "b is not judged: {:?}",
        p.stale_overrides
    );
    // A named job whose file is gone is removed.
    let scope = Scope {
        only: Some(BTreeSet::from(["gone".to_string()])),
        ..scope
    };
    let p = plan_scoped(&desired, &actual, &overrides, now(), &scope).unwrap();
    assert_eq!(p.jobs.len(), 1);
    assert_eq!(
        (p.jobs[0].job.as_str(), p.jobs[0].change),
        ("gone", Change::Remove)
    );
}
