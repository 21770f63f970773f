//! The dashboard's live parts on a real systemd (issue 16): the live tail of
//! a running run (server-sent events from the journal, by the run's
//! invocation id), served by the shipped units' sandboxed jobctl-web.

use super::*;
use crate::web::NO_CACHE;
use crate::web::{install_units, stop_units, web_binary};

const SOCKET: &str = "/run/jobctl/web.sock";

/// `curl` inside the sandbox, at most 10 s: (status, body). `prefix` runs
/// it as someone else or in another namespace.
pub(super) fn curl(env: &Env, prefix: &str, args: &str) -> Result<(u16, String), Failed> {
    let out = env.sh(&format!(
        "{prefix} curl -sS --max-time 10 {NO_CACHE} -w '\\n%{{http_code}}' {args}; true"
    ))?;
    let (body, code) = out.trim_end().rsplit_once('\n').unwrap_or(("", out.trim()));
    let code = code
        .trim()
        .parse()
        .map_err(|_| format!("curl printed no status: {out}"))?;
    Ok((code, body.to_string()))
}

/// The SSE events in `text`: (event name, id, data) of each complete one.
pub(super) fn events(text: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    // Only complete events: those followed by their blank line.
    let complete = match text.rfind("\n\n") {
        Some(i) => &text[..i],
        None => return out,
    };
    for block in complete.split("\n\n") {
        let (mut name, mut id, mut data) = (String::new(), String::new(), String::new());
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                name = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("id:") {
                id = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.strip_prefix(' ').unwrap_or(v));
            }
        }
        if !name.is_empty() || !data.is_empty() {
            out.push((name, id, data));
        }
    }
    out
}

/// The `line` events' texts so far in `file`.
pub(super) fn lines_in(file: &Path) -> Result<Vec<Value>, Failed> {
    let text = fs::read_to_string(file).unwrap_or_default();
    events(&text)
        .into_iter()
        .filter(|(name, _, _)| name == "line")
        .map(|(_, _, data)| serde_json::from_str(&data).map_err(|e| format!("{e}: {data}").into()))
        .collect()
}

/// Waits (at most 30 s) until a `line` event with `text` is in `file`.
pub(super) fn wait_for_line(env: &Env, file: &Path, what: &str, text: &str) -> R {
    env.wait_for(what, Duration::from_secs(30), || {
        Ok(lines_in(file)?.iter().any(|l| l["text"] == text))
    })
}

/// Waits (at most 60 s, a run's end) until the `end` event is in `file`.
pub(super) fn wait_for_end(env: &Env, file: &Path) -> R {
    env.wait_for("the end event", Duration::from_secs(60), || {
        let text = fs::read_to_string(file).unwrap_or_default();
        Ok(events(&text).iter().any(|(name, _, _)| name == "end"))
    })
}

/// The `journalctl …` command a run page shows (in its `<code>`).
pub(super) fn journal_command_on(page: &str) -> Result<String, Failed> {
    Ok(page
        .split("<code>")
        .filter_map(|p| p.split_once("</code>").map(|(c, _)| c))
        .find(|c| c.starts_with("journalctl "))
        .ok_or_else(|| format!("no journalctl command on the run page: {page}"))?
        .to_string())
}

/// A follower of an event stream in the background inside the sandbox:
/// the stream into `out`, the headers into `out.headers`, curl's exit
/// status into `out.rc` once the stream ends. Returns the file holding the
/// follower's pid (`kill` of it ends the client).
pub(super) fn follow(env: &Env, prefix: &str, url: &str, out: &Path) -> Result<PathBuf, Failed> {
    let pid = PathBuf::from(format!("{}.pid", out.display()));
    let rc = PathBuf::from(format!("{}.rc", out.display()));
    let _ = fs::remove_file(out);
    let _ = fs::remove_file(&rc);
    let _ = fs::remove_file(&pid);
    env.sh(&format!(
        "( sh -c 'echo $$ > {pid}; exec {prefix} timeout 120 curl -sS -N -D {out}.headers {url}' \
             > {out} 2> {out}.err; echo $? > {rc} ) </dev/null >/dev/null 2>&1 &",
        pid = pid.display(),
        rc = rc.display(),
        out = out.display(),
    ))?;
    env.wait_for("the follower's pid", Duration::from_secs(10), || {
        Ok(fs::read_to_string(&pid).is_ok_and(|p| p.trim().parse::<u32>().is_ok()))
    })?;
    Ok(pid)
}

/// Writes the manual job `job` in `dir`: it prints a first line, then (once
/// the test creates `one` in the returned gates folder, the scratch folder
/// `gates`) a line with a `<script>` and an escape sequence in it, then
/// (`two`) a last line.
pub(super) fn talking_job(env: &Env, dir: &Path, job: &str, gates: &str) -> PathBuf {
    let gates = env.scratch.join(gates);
    let _ = fs::remove_dir_all(&gates);
    fs::create_dir_all(&gates).unwrap();
    let script = gates.join("talk.sh");
    fs::write(
        &script,
        format!(
            "echo live-first\n\
             while [ ! -e {g}/one ]; do sleep 0.1; done\n\
             printf '<script>alert(1)</script> \\033[31mred\\n'\n\
             while [ ! -e {g}/two ]; do sleep 0.1; done\n\
             echo live-last\n",
            g = gates.display()
        ),
    )
    .unwrap();
    write_job(
        dir,
        job,
        &format!(
            "command = [\"/bin/sh\", {:?}]\nmanual = true\n",
            script.display().to_string()
        ),
    );
    gates
}

pub fn a_running_runs_new_lines_stream_as_text_until_its_end(env: &Env) -> R {
    let dir = env.jobs_dir("web-live");
    let gates = talking_job(env, &dir, "web-live", "web-live-gates");
    let config = env.scratch.join("web-live-config.toml");
    fs::write(&config, format!("jobctl_path = \"{JOBCTL}\"\n[web]\n")).unwrap();
    let jobctl = |args: &[&str]| env.jobctl_with(&config, &dir, args);
    ok(&jobctl(&["apply"]))?;
    let _ = fs::remove_file(env.scratch.join("web-tokens"));
    let out = jobctl(&["token", "create", "--scope", "read", "--name", "live"]);
    ok(&out)?;
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let port = 20000 + ((std::process::id() + 7) % 20000) as u16;
    install_units(env, &dir, &config, Some(port))?;
    let result = (|| {
        ok(&jobctl(&["run", "web-live"]))?;
        let run = env.wait_for_run("web-live", Duration::from_secs(30), |r| {
            r["status"] == "running"
        })?;
        let id = run["id"].as_str().unwrap_or_default().to_string();
        let events_path = format!("/api/v1/jobs/web-live/runs/{id}/output/events");

        // Refused as the run's output is: another user on the socket, TCP
        // without a token; an unknown run is 404.
        let nobody = "setpriv --reuid=nobody --regid=$(id -g nobody) --clear-groups";
        let (status, body) = curl(
            env,
            nobody,
            &format!("--unix-socket {SOCKET} 'http://l{events_path}'"),
        )?;
        check(status == 403, || {
            format!("another user on the socket: {status} {body}")
        })?;
        let (status, body) = curl(
            env,
            "nsenter -t 1 -n",
            &format!("'http://127.0.0.1:{port}{events_path}'"),
        )?;
        check(status == 401, || {
            format!("TCP without a token: {status} {body}")
        })?;
        let (status, body) = curl(
            env,
            "",
            &format!(
                "--unix-socket {SOCKET} 'http://l/api/v1/jobs/web-live/runs/00000000/output/events'"
            ),
        )?;
        check(status == 404, || format!("an unknown run: {status} {body}"))?;

        // The run's page while it runs: a refresh without JavaScript, the
        // events' address for the page's own script.
        let (status, page) = curl(
            env,
            "",
            &format!("--unix-socket {SOCKET} 'http://l/jobs/web-live/runs/{id}'"),
        )?;
        check(status == 200, || format!("run page: {status} {page}"))?;
        check(
            page.contains("<noscript><meta http-equiv=\"refresh\"")
                && page.contains(&format!("data-events=\"{events_path}\""))
                && page.contains("<script src=\"/page.js\"")
                && page.contains("Refresh"),
            || format!("the running run's page has no live tail: {page}"),
        )?;
        let (status, js) = curl(env, "", &format!("--unix-socket {SOCKET} http://l/page.js"))?;
        check(
            status == 200 && js.contains("EventSource") && js.contains("textContent"),
            || format!("/page.js: {status} {js}"),
        )?;
        check(!js.contains("innerHTML"), || "page.js inserts HTML".into())?;

        // Root on the socket and a read token on TCP follow the run.
        let root_out = env.scratch.join("web-live-root.sse");
        follow(
            env,
            "",
            &format!("--unix-socket {SOCKET} http://l{events_path}"),
            &root_out,
        )?;
        let token_out = env.scratch.join("web-live-token.sse");
        let token_pid = follow(
            env,
            "nsenter -t 1 -n",
            &format!("-H \"Authorization: Bearer {token}\" http://127.0.0.1:{port}{events_path}"),
            &token_out,
        )?;
        for out in [&root_out, &token_out] {
            wait_for_line(
                env,
                out,
                "the line written before the connection",
                "live-first",
            )?;
        }
        let headers =
            fs::read_to_string(format!("{}.headers", root_out.display())).unwrap_or_default();
        check(
            headers.starts_with("HTTP/1.1 200")
                && headers
                    .to_ascii_lowercase()
                    .contains("content-type: text/event-stream"),
            || format!("the stream's headers: {headers}"),
        )?;
        check(
            !fs::read_to_string(&root_out)
                .unwrap_or_default()
                .contains("alert"),
            || "the second line came before it was written".into(),
        )?;

        // A line written after the connection opened arrives, as JSON text.
        fs::write(gates.join("one"), "").unwrap();
        let want = "<script>alert(1)</script> \u{1b}[31mred";
        wait_for_line(env, &root_out, "the new line on the stream", want)?;
        let raw = fs::read(&root_out).unwrap();
        check(!raw.contains(&0x1b), || {
            "a raw escape character in the event stream".into()
        })?;
        let line = lines_in(&root_out)?
            .into_iter()
            .find(|l| l["text"] == want)
            .unwrap();
        check(
            line["shown"] == "<script>alert(1)</script> \\x1b[31mred",
            || format!("the line as the page shows it: {line}"),
        )?;
        check(
            String::from_utf8_lossy(&raw).contains("\\u001b[31mred"),
            || "the escape character is not JSON-escaped".into(),
        )?;

        // A client that goes ends its follower: the server's journalctl for
        // it exits.
        let followers = || -> Result<usize, Failed> {
            let pid = env.prop("jobctl-web.service", "MainPID")?;
            let out = env.sh(&format!(
                "ps -o comm= --ppid {pid} | grep -c '^journalctl' ; true"
            ))?;
            Ok(out.trim().parse().unwrap_or(0))
        };
        check(followers()? == 2, || {
            format!("{} followers for two clients", followers().unwrap_or(0))
        })?;
        env.sh(&format!("kill $(cat {})", token_pid.display()))?;
        env.wait_for(
            "the gone client's follower to stop",
            Duration::from_secs(30),
            || Ok(followers()? == 1),
        )?;

        // A client that reconnects with Last-Event-ID (as EventSource does)
        // gets only the lines after that one.
        let text = fs::read_to_string(&root_out).unwrap_or_default();
        let first_id = events(&text)
            .into_iter()
            .find(|(name, _, data)| name == "line" && data.contains("live-first"))
            .map(|(_, id, _)| id)
            .ok_or_else(|| format!("no id on the first line: {text}"))?;
        let resumed = env.sh(&format!(
            "curl -sS -N --max-time 3 -H 'Last-Event-ID: {first_id}' --unix-socket {SOCKET} http://l{events_path}; true"
        ))?;
        let resumed: Vec<String> = events(&resumed)
            .into_iter()
            .filter(|(name, _, _)| name == "line")
            .map(|(_, _, data)| data)
            .collect();
        check(resumed.len() == 1 && resumed[0].contains("alert"), || {
            format!("resumed after the first line: {resumed:?}")
        })?;

        // The run ends: the last line, then the end event with its status,
        // and the stream ends.
        fs::write(gates.join("two"), "").unwrap();
        wait_for_end(env, &root_out)?;
        let text = fs::read_to_string(&root_out).unwrap_or_default();
        let all = events(&text);
        let end = all.iter().position(|(name, _, _)| name == "end").unwrap();
        let last = all
            .iter()
            .position(|(name, _, data)| name == "line" && data.contains("live-last"));
        check(last.is_some_and(|l| l < end), || {
            format!("the last line is not before the end: {text}")
        })?;
        let end: Value = serde_json::from_str(&all[end].2)?;
        check(
            end["status"] == "success" && end["run"]["id"] == id.as_str(),
            || format!("the end event: {end}"),
        )?;
        let rc = PathBuf::from(format!("{}.rc", root_out.display()));
        env.wait_for(
            "the stream to end after its end event",
            Duration::from_secs(30),
            || Ok(fs::read_to_string(&rc).is_ok_and(|c| c.trim() == "0")),
        )?;
        check(followers()? == 0, || {
            "a follower outlived its stream".into()
        })?;
        // The ended run's page refreshes no more.
        let (_, page) = curl(
            env,
            "",
            &format!("--unix-socket {SOCKET} 'http://l/jobs/web-live/runs/{id}'"),
        )?;
        check(!page.contains("http-equiv=\"refresh\""), || {
            format!("an ended run's page still refreshes: {page}")
        })
    })();
    stop_units(env)?;
    result
}

/// `curl -i` inside the sandbox as root on the socket: (status, headers in
/// lower case, body).
fn exchange(env: &Env, args: &str) -> Result<(u16, String, String), Failed> {
    let out = env.sh(&format!(
        "curl -sS --max-time 10 -i --unix-socket {SOCKET} {args}"
    ))?;
    let (head, body) = out
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP answer: {out}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status: {head}"))?;
    Ok((status, head.to_ascii_lowercase(), body.to_string()))
}

pub fn output_ranges_and_a_run_by_its_id_alone(env: &Env) -> R {
    let dir = env.jobs_dir("web-range");
    write_job(
        &dir,
        "web-range",
        "command = [\"/usr/bin/printf\", \"alpha\\\\nbeta\\\\ngamma\\\\n\"]\nmanual = true\n",
    );
    let config = env.scratch.join("web-range-config.toml");
    fs::write(&config, format!("jobctl_path = \"{JOBCTL}\"\n[web]\n")).unwrap();
    let out = env.jobctl_with(&config, &dir, &["apply"]);
    ok(&out)?;
    let out = env.jobctl_with(&config, &dir, &["run", "web-range", "--wait"]);
    ok(&out)?;
    let port = 20000 + ((std::process::id() + 11) % 20000) as u16;
    install_units(env, &dir, &config, Some(port))?;
    let result = (|| {
        let run = env.wait_for_run("web-range", Duration::from_secs(30), |r| {
            r["status"] == "success"
        })?;
        let id = run["id"].as_str().unwrap_or_default().to_string();
        // The whole output, as the job wrote it.
        let text = "alpha\nbeta\ngamma\n";
        let base = format!("http://l/api/v1/jobs/web-range/runs/{id}/output/text");
        let (status, head, body) = exchange(env, &format!("'{base}'"))?;
        check(
            status == 200 && body == text && head.contains("accept-ranges: bytes"),
            || format!("the output as text: {status}\n{head}\n{body:?}"),
        )?;
        // One range: 206 with Content-Range; from an offset; the last bytes.
        for (range, want, content_range) in [
            ("bytes=0-4", "alpha", "bytes 0-4/17"),
            ("bytes=6-", "beta\ngamma\n", "bytes 6-16/17"),
            ("bytes=-6", "gamma\n", "bytes 11-16/17"),
            ("bytes=11-99", "gamma\n", "bytes 11-16/17"),
        ] {
            let (status, head, body) = exchange(env, &format!("-H 'Range: {range}' '{base}'"))?;
            check(
                status == 206
                    && body == want
                    && head.contains(&format!("content-range: {content_range}\r\n")),
                || format!("{range}: {status}\n{head}\n{body:?}"),
            )?;
        }
        // Raw on request (this output has no control character: the same
        // text); a value that is not a boolean is refused.
        let (status, _, body) = exchange(env, &format!("'{base}?raw=true'"))?;
        check(status == 200 && body == text, || {
            format!("raw: {status} {body:?}")
        })?;
        let (status, _, body) = exchange(env, &format!("'{base}?raw=maybe'"))?;
        check(status == 400, || format!("raw=maybe: {status} {body:?}"))?;
        // Past the end: 416, with the length.
        let (status, head, _) = exchange(env, &format!("-H 'Range: bytes=17-' '{base}'"))?;
        check(
            status == 416 && head.contains("content-range: bytes */17\r\n"),
            || format!("an unsatisfiable range: {status}\n{head}"),
        )?;
        // Refused as the output is: another user on the socket.
        let (status, body) = curl(
            env,
            "setpriv --reuid=nobody --regid=$(id -g nobody) --clear-groups",
            &format!("--unix-socket {SOCKET} -H 'Range: bytes=0-4' '{base}'"),
        )?;
        check(status == 403, || {
            format!("another user's range: {status} {body}")
        })?;

        // The run by its id alone, and by a prefix: the object under its job.
        let (status, _, under_job) =
            exchange(env, &format!("'http://l/api/v1/jobs/web-range/runs/{id}'"))?;
        check(status == 200, || format!("the run under its job: {status}"))?;
        let want: Value = serde_json::from_str(&under_job)?;
        check(want["id"] == id.as_str(), || format!("{want}"))?;
        for asked in [id.as_str(), &id[..8]] {
            let (status, _, body) = exchange(env, &format!("'http://l/api/v1/runs/{asked}'"))?;
            check(status == 200, || {
                format!("/api/v1/runs/{asked}: {status} {body}")
            })?;
            let got: Value = serde_json::from_str(&body)?;
            check(got == want, || {
                format!(
                    "/api/v1/runs/{asked} differs from the run under its job:\n{got:#}\n{want:#}"
                )
            })?;
        }
        let (status, _, body) = exchange(env, "'http://l/api/v1/runs/0000000000000001'")?;
        check(status == 404, || format!("an unknown run: {status} {body}"))?;
        let (status, _, body) = exchange(env, "'http://l/api/v1/runs/not-hex'")?;
        check(status == 400, || format!("a bad run id: {status} {body}"))?;
        let (status, body) = curl(
            env,
            "setpriv --reuid=nobody --regid=$(id -g nobody) --clear-groups",
            &format!("--unix-socket {SOCKET} 'http://l/api/v1/runs/{id}'"),
        )?;
        check(status == 403, || format!("another user: {status} {body}"))?;
        let (status, body) = curl(
            env,
            "nsenter -t 1 -n",
            &format!("'http://127.0.0.1:{port}/api/v1/runs/{id}'"),
        )?;
        check(status == 401, || {
            format!("TCP without a token: {status} {body}")
        })
    })();
    stop_units(env)?;
    result
}

/// The `datetime` of each `<time>` in `html`, in order.
fn times_in(html: &str) -> Vec<jiff::Timestamp> {
    html.split("<time datetime=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next()?.parse().ok())
        .collect()
}

pub fn the_job_page_shows_its_definition_next_runs_and_zones(env: &Env) -> R {
    let dir = env.jobs_dir("web-zone");
    write_job(
        &dir,
        "web-zone",
        "command = [\"/bin/true\"]\ndaily = \"03:00\"\ntimezone = \"Europe/Berlin\"\ndescription = \"<b>not bold</b>\"\n",
    );
    let config = env.scratch.join("web-zone-config.toml");
    fs::write(&config, format!("jobctl_path = \"{JOBCTL}\"\n[web]\n")).unwrap();
    let jobctl = |args: &[&str]| env.jobctl_with(&config, &dir, args);
    ok(&jobctl(&["apply"]))?;
    let port = 20000 + ((std::process::id() + 13) % 20000) as u16;
    install_units(env, &dir, &config, Some(port))?;
    let result = (|| {
        let (status, page) = curl(
            env,
            "",
            &format!("--unix-socket {SOCKET} http://l/jobs/web-zone"),
        )?;
        check(status == 200, || format!("job page: {status} {page}"))?;
        // The next runs: five, the first the one `jobctl status` reports
        // (systemd's next elapse), each at 03:00 in Berlin on successive days
        // (checked here with jiff, not the core's engine).
        let out = jobctl(&["status", "--json", "web-zone"]);
        ok(&out)?;
        let status_doc: Value = serde_json::from_slice(&out.stdout)?;
        let next_run: jiff::Timestamp = status_doc["jobs"][0]["next_run"]
            .as_str()
            .ok_or_else(|| format!("no next_run: {status_doc}"))?
            .parse()?;
        let section = page
            .split("<h2 id=\"next-runs\">Next runs</h2>")
            .nth(1)
            .and_then(|rest| rest.split("<h2>").next())
            .ok_or_else(|| format!("no next runs on the job page: {page}"))?;
        let next = times_in(section);
        check(next.len() == 5 && next[0] == next_run, || {
            format!("next runs {next:?}, status says {next_run}: {section}")
        })?;
        let berlin = jiff::tz::TimeZone::get("Europe/Berlin")?;
        for (i, t) in next.iter().enumerate() {
            let local = t.to_zoned(berlin.clone());
            check(local.hour() == 3 && local.minute() == 0, || {
                format!("run {i} is not at 03:00 in Berlin: {local}")
            })?;
            if i > 0 {
                let before = next[i - 1].to_zoned(berlin.clone()).date();
                check(local.date() == before.tomorrow()?, || {
                    format!("runs {} and {i} are not on successive days", i - 1)
                })?;
            }
            check(
                section.contains(&format!("{} 03:00:00", local.date()))
                    && section.contains("(Europe/Berlin)"),
                || format!("run {i} is not shown in the job's zone: {section}"),
            )?;
        }
        // The job's zone, where it applies; times in <time> elements, UTC
        // without the script.
        check(
            page.contains("<dt>Time zone</dt><dd>Europe/Berlin") && page.contains(" UTC</time>"),
            || format!("the job's zone or UTC times missing: {page}"),
        )?;
        // The definition: the job file and the installed units, as text.
        let cat = jobctl(&["cat", "--json", "web-zone"]);
        ok(&cat)?;
        let cat: Value = serde_json::from_slice(&cat.stdout)?;
        let timer = cat["units"]
            .as_array()
            .and_then(|u| {
                u.iter()
                    .find(|u| u["path"].as_str().is_some_and(|p| p.ends_with(".timer")))
            })
            .ok_or_else(|| format!("no timer in cat: {cat}"))?;
        check(
            page.contains("description = &quot;&lt;b&gt;not bold&lt;/b&gt;&quot;")
                && !page.contains("<b>not bold")
                && page.contains(&format!("# {}", timer["path"].as_str().unwrap()))
                && page.contains("OnCalendar=")
                && page.contains("Europe/Berlin"),
            || format!("the definition is not shown as text: {page}"),
        )?;
        // The jobs page's next run is a <time> too.
        let (_, jobs) = curl(env, "", &format!("--unix-socket {SOCKET} http://l/"))?;
        check(times_in(&jobs).contains(&next_run), || {
            format!("the jobs page's next run is not a <time>: {jobs}")
        })
    })();
    stop_units(env)?;
    result
}

/// The live tail and the times in a real browser (chromium, in the zone
/// Asia/Tokyo, web_browser.rs): a running run's new line appears on its
/// page without a reload, as text; the end is said; times are shown in the
/// browser's zone, named; the job page shows its definition and next runs.
pub fn a_browser_shows_a_running_runs_lines_live_and_times_in_its_zone(env: &Env) -> R {
    use crate::web_browser::{Browser, free_port};
    let dir = env.jobs_dir("web-live-browser");
    let gates = talking_job(env, &dir, "live-talk", "web-live-browser-gates");
    write_job(
        &dir,
        "berlin-nightly",
        "command = [\"/bin/true\"]\ndaily = \"03:00\"\ntimezone = \"Europe/Berlin\"\ndescription = \"<b>not bold</b>\"\n",
    );
    let config = env.scratch.join("web-live-browser-config.toml");
    fs::write(&config, format!("jobctl_path = \"{JOBCTL}\"\n[web]\n")).unwrap();
    let jobctl = |args: &[&str]| env.jobctl_with(&config, &dir, args);
    ok(&jobctl(&["apply"]))?;
    let _ = fs::remove_file(env.scratch.join("web-tokens"));
    let out = jobctl(&["token", "create", "--scope", "read", "--name", "live"]);
    ok(&out)?;
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    // The server in the sandbox, on the host's loopback, where the browser is.
    let port = free_port();
    let pidfile = env.scratch.join("web-live-browser.pid");
    let mut server = env
        .sb
        .command("/bin/sh")
        .arg("-c")
        .arg(format!(
            "echo $$ > {}; exec {} --config {} --jobs-dir {} --socket /run/jobctl/web-live-browser.sock --listen 127.0.0.1:{port}",
            pidfile.display(),
            web_binary()?.display(),
            config.display(),
            dir.display()
        ))
        .stdout(std::process::Stdio::null())
        .stderr(fs::File::create(env.scratch.join("web-live-browser.log")).unwrap())
        .spawn()
        .unwrap();
    let result = (|| {
        env.wait_for("jobctl-web on TCP", Duration::from_secs(20), || {
            Ok(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())
        })?;
        let base = format!("http://127.0.0.1:{port}");
        let b = Browser::start(&env.scratch)?;
        b.go(&format!("{base}/login"))?;
        b.type_into("input[name=token]", &token)?;
        b.click("button[type=submit]")?;
        env.wait_for("the jobs page", Duration::from_secs(30), || {
            Ok(b.count("td a[href^='/jobs/']")? == 2)
        })?;

        // The job page: its next runs in the browser's zone and the job's,
        // its definition as text.
        b.go(&format!("{base}/jobs/berlin-nightly"))?;
        let first = b.text("table.next tbody tr td:nth-child(1)")?;
        let in_berlin = b.text("table.next tbody tr td:nth-child(2)")?;
        let out = jobctl(&["status", "--json", "berlin-nightly"]);
        ok(&out)?;
        let next_run: jiff::Timestamp =
            serde_json::from_slice::<Value>(&out.stdout)?["jobs"][0]["next_run"]
                .as_str()
                .unwrap_or_default()
                .parse()?;
        let kolkata = next_run
            .to_zoned(jiff::tz::TimeZone::get("Asia/Tokyo")?)
            .strftime("%Y-%m-%d %H:%M:%S Asia/Tokyo")
            .to_string();
        check(first == kolkata, || {
            format!("the next run in the browser's zone: {first:?}, expected {kolkata:?}")
        })?;
        check(
            in_berlin.contains(" 03:00:00 ") && in_berlin.ends_with("(Europe/Berlin)"),
            || format!("the next run in the job's zone: {in_berlin:?}"),
        )?;
        let definition = b.text("pre.definition")?;
        check(
            definition.contains("description = \"<b>not bold</b>\""),
            || format!("the job file as text: {definition:?}"),
        )?;
        b.screenshot("job-next-runs")?;
        b.go(&format!("{base}/jobs/berlin-nightly#definition"))?;
        b.screenshot("job-definition")?;

        // A running run's page follows it.
        ok(&jobctl(&["run", "live-talk"]))?;
        let run = env.wait_for_run("live-talk", Duration::from_secs(30), |r| {
            r["status"] == "running"
        })?;
        let id = run["id"].as_str().unwrap_or_default().to_string();
        b.go(&format!("{base}/jobs/live-talk/runs/{id}"))?;
        env.wait_for(
            "the first line on the page",
            Duration::from_secs(30),
            || Ok(b.count("pre.output span.live")? >= 1),
        )?;
        check(b.text("pre.output")?.contains("live-first"), || {
            "the first line is not on the page".into()
        })?;
        // Written after the page loaded: appears without a reload (only the
        // script makes span.live; the history has no output while it runs).
        fs::write(gates.join("one"), "").unwrap();
        env.wait_for("the new line on the page", Duration::from_secs(30), || {
            Ok(b.count("pre.output span.live")? >= 2)
        })?;
        let output = b.text("pre.output")?;
        check(
            output.contains("log|<script>alert(1)</script> \\x1b[31mred"),
            || format!("the new line is not shown as text: {output:?}"),
        )?;
        check(b.count("script:not([src='/page.js'])")? == 0, || {
            "a script element from the output".into()
        })?;
        let started = b.text("dl time")?;
        let started_at: jiff::Timestamp = run["started"].as_str().unwrap_or_default().parse()?;
        let want = started_at
            .to_zoned(jiff::tz::TimeZone::get("Asia/Tokyo")?)
            .strftime("%Y-%m-%d %H:%M:%S Asia/Tokyo")
            .to_string();
        check(started == want, || {
            format!("the start in the browser's zone: {started:?}, expected {want:?}")
        })?;
        b.screenshot("run-live")?;
        fs::write(gates.join("two"), "").unwrap();
        env.wait_for("the end on the page", Duration::from_secs(60), || {
            Ok(b.text("#live")?.starts_with("The run ended: success."))
        })?;
        check(b.text("#status")? == "success", || {
            "the run's status is not updated at its end".into()
        })?;
        check(b.text("pre.output")?.contains("live-last"), || {
            "the last line is not on the page".into()
        })?;
        b.screenshot("run-live-ended")?;
        Ok(())
    })();
    let _ = env.sh(&format!(
        "kill $(cat {}) 2>/dev/null; true",
        pidfile.display()
    ));
    let _ = server.wait();
    result
}
