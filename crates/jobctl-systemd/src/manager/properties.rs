//! Bulk reads of unit properties, decoded straight into [`UnitProperties`]:
//! a `GetAll` reply (one interface, or every one) into [`Props`], the typed
//! dictionary of the properties jobctl reads (others are skipped without
//! being materialised); a `Get` reply into the one field of its
//! [`Property`]. Calls are pipelined on one connection, replies matched by
//! serial; a unit any of whose calls failed is an error, never a unit with
//! empty fields.

use std::collections::HashMap;
use std::time::Instant;

use futures_util::StreamExt as _;
use zbus::zvariant::{self, OwnedObjectPath, OwnedValue};

use super::{MAX_IN_FLIGHT, Systemd};
use crate::error::{Error, ErrorKind, Result};

/// Unit, timer and service properties jobctl reads, from one `GetAll`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitProperties {
    pub name: String,
    pub load_state: String,
    pub active_state: String,
    pub sub_state: String,
    pub unit_file_state: String,
    pub fragment_path: String,
    /// The current or last invocation, hex (empty before the first).
    pub invocation_id: String,
    pub active_enter_usec: u64,
    pub inactive_enter_usec: u64,
    /// Timers: the next elapse on the realtime clock, µs since the epoch (0 = none).
    pub next_elapse_realtime_usec: u64,
    /// Timers: the next elapse on the monotonic clock (0 = none).
    pub next_elapse_monotonic_usec: u64,
    /// Timers: the last time it triggered, µs since the epoch (0 = never).
    pub last_trigger_usec: u64,
    /// Timers and services: "success", "exit-code", "signal", "timeout", …
    pub result: String,
    /// Services: the main process's exit code or signal (see `exec_main_code`).
    pub exec_main_status: i32,
    /// Services: CLD_EXITED (1), CLD_KILLED (2), CLD_DUMPED (3); 0 = no exit yet.
    pub exec_main_code: i32,
    pub exec_main_start_usec: u64,
    pub exec_main_exit_usec: u64,
    pub main_pid: u32,
    /// Why the unit did not load (`LoadError`: D-Bus error name and
    /// systemd's message; empty when it loaded).
    pub load_error_name: String,
    pub load_error: String,
    /// Whether the unit's conditions held at their last check (`true`
    /// before any check).
    pub condition_result: bool,
    /// Whether its asserts held at their last check.
    pub assert_result: bool,
    /// The conditions that failed at the last check, as written in the unit
    /// (`ConditionPathExists=/srv/ready`).
    pub failed_conditions: Vec<String>,
}

impl UnitProperties {
    /// A unit of which nothing has been read yet: conditions and asserts
    /// count as met until systemd says otherwise.
    fn named(name: &str) -> UnitProperties {
        UnitProperties {
            name: name.to_string(),
            condition_result: true,
            assert_result: true,
            ..UnitProperties::default()
        }
    }
}

/// A property jobctl reads on its own (`Get`): what `list`, `status` and
/// `apply` need of a unit without reading its whole set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Property {
    /// Service: how its last run ended ("success", "exit-code", …).
    Result,
    ExecMainStartTimestamp,
    ExecMainExitTimestamp,
    ExecMainStatus,
    ExecMainCode,
    /// Unit: the current or last invocation.
    InvocationId,
    /// Unit: why it did not load.
    LoadError,
}

impl Property {
    pub fn interface(self) -> &'static str {
        match self {
            Property::InvocationId | Property::LoadError => "org.freedesktop.systemd1.Unit",
            _ => "org.freedesktop.systemd1.Service",
        }
    }

    /// systemd's name of the property.
    pub fn name(self) -> &'static str {
        match self {
            Property::Result => "Result",
            Property::ExecMainStartTimestamp => "ExecMainStartTimestamp",
            Property::ExecMainExitTimestamp => "ExecMainExitTimestamp",
            Property::ExecMainStatus => "ExecMainStatus",
            Property::ExecMainCode => "ExecMainCode",
            Property::InvocationId => "InvocationID",
            Property::LoadError => "LoadError",
        }
    }
}

/// The Service properties `list` reads (the exit status is for `status`,
/// which reads one unit whole).
const SERVICE_PROPS: [Property; 3] = [
    Property::Result,
    Property::ExecMainStartTimestamp,
    Property::ExecMainExitTimestamp,
];

/// One of a unit's `Conditions` (`a(sbbsi)`): type, trigger, negate,
/// parameter, state (< 0: failed at the last check).
type Condition = (String, bool, bool, String, i32);

/// The properties jobctl reads, as one reply (or one `Get`) carries them:
/// each present or not. A `GetAll` reply is decoded into it directly;
/// unknown keys are skipped without being materialised (a Service's GetAll
/// carries ~200 properties).
#[derive(Debug, Default, zvariant::DeserializeDict, zvariant::Type)]
#[zvariant(signature = "a{sv}", rename_all = "PascalCase")]
struct Props {
    load_state: Option<String>,
    active_state: Option<String>,
    sub_state: Option<String>,
    unit_file_state: Option<String>,
    fragment_path: Option<String>,
    #[zvariant(rename = "InvocationID")]
    invocation_id: Option<Vec<u8>>,
    active_enter_timestamp: Option<u64>,
    inactive_enter_timestamp: Option<u64>,
    #[zvariant(rename = "NextElapseUSecRealtime")]
    next_elapse_usec_realtime: Option<u64>,
    #[zvariant(rename = "NextElapseUSecMonotonic")]
    next_elapse_usec_monotonic: Option<u64>,
    #[zvariant(rename = "LastTriggerUSec")]
    last_trigger_usec: Option<u64>,
    result: Option<String>,
    exec_main_status: Option<i32>,
    exec_main_code: Option<i32>,
    exec_main_start_timestamp: Option<u64>,
    exec_main_exit_timestamp: Option<u64>,
    #[zvariant(rename = "MainPID")]
    main_pid: Option<u32>,
    /// The D-Bus error name and systemd's message.
    load_error: Option<(String, String)>,
    condition_result: Option<bool>,
    assert_result: Option<bool>,
    conditions: Option<Vec<Condition>>,
}

impl Props {
    /// The value of one `Get`, in its field.
    fn one(property: Property, value: OwnedValue) -> std::result::Result<Props, zvariant::Error> {
        let mut p = Props::default();
        match property {
            Property::Result => p.result = Some(value.try_into()?),
            Property::ExecMainStartTimestamp => {
                p.exec_main_start_timestamp = Some(value.try_into()?)
            }
            Property::ExecMainExitTimestamp => p.exec_main_exit_timestamp = Some(value.try_into()?),
            Property::ExecMainStatus => p.exec_main_status = Some(value.try_into()?),
            Property::ExecMainCode => p.exec_main_code = Some(value.try_into()?),
            Property::InvocationId => p.invocation_id = Some(value.try_into()?),
            Property::LoadError => p.load_error = Some(value.try_into()?),
        }
        Ok(p)
    }

    /// Writes what this reply carries into `unit`.
    fn apply(self, unit: &mut UnitProperties) {
        fn put<T>(field: &mut T, value: Option<T>) {
            if let Some(value) = value {
                *field = value;
            }
        }
        put(&mut unit.load_state, self.load_state);
        put(&mut unit.active_state, self.active_state);
        put(&mut unit.sub_state, self.sub_state);
        put(&mut unit.unit_file_state, self.unit_file_state);
        put(&mut unit.fragment_path, self.fragment_path);
        put(
            &mut unit.invocation_id,
            self.invocation_id
                .map(|bytes| bytes.iter().map(|b| format!("{b:02x}")).collect()),
        );
        put(&mut unit.active_enter_usec, self.active_enter_timestamp);
        put(&mut unit.inactive_enter_usec, self.inactive_enter_timestamp);
        put(
            &mut unit.next_elapse_realtime_usec,
            self.next_elapse_usec_realtime,
        );
        put(
            &mut unit.next_elapse_monotonic_usec,
            self.next_elapse_usec_monotonic,
        );
        put(&mut unit.last_trigger_usec, self.last_trigger_usec);
        put(&mut unit.result, self.result);
        put(&mut unit.exec_main_status, self.exec_main_status);
        put(&mut unit.exec_main_code, self.exec_main_code);
        put(
            &mut unit.exec_main_start_usec,
            self.exec_main_start_timestamp,
        );
        put(&mut unit.exec_main_exit_usec, self.exec_main_exit_timestamp);
        put(&mut unit.main_pid, self.main_pid);
        if let Some((name, message)) = self.load_error {
            unit.load_error_name = name;
            unit.load_error = message;
        }
        put(&mut unit.condition_result, self.condition_result);
        put(&mut unit.assert_result, self.assert_result);
        put(
            &mut unit.failed_conditions,
            self.conditions.map(|conditions| {
                conditions
                    .into_iter()
                    .filter(|(_, _, _, _, state)| *state < 0)
                    .map(|(kind, trigger, negate, param, _)| {
                        format!(
                            "{kind}={}{}{param}",
                            if trigger { "|" } else { "" },
                            if negate { "!" } else { "" }
                        )
                    })
                    .collect()
            }),
        );
    }
}

/// What to read of one unit object.
#[derive(Debug, Clone, Copy)]
enum Fetch {
    /// Every interface (`GetAll("")`).
    All,
    /// One interface (`GetAll(iface)`).
    Interface(&'static str),
    /// One property (`Get`).
    Property(Property),
}

/// One call of a bulk read: which unit (its index among the units read),
/// where, what.
struct Call<'a> {
    unit: usize,
    name: &'a str,
    path: &'a OwnedObjectPath,
    fetch: Fetch,
}

impl Systemd {
    /// All properties of one unit (every interface), in one call. Reading
    /// every interface includes `UnitFileState`, which systemd 252 computes
    /// by scanning the unit folders: fine for one unit, never for a thousand
    /// (see [`Systemd::bulk_properties`]).
    pub fn properties(&self, name: &str) -> Result<UnitProperties> {
        let path = self.load_unit(name)?;
        let units = [(name.to_string(), path)];
        self.read(&units, |_, _| vec![Fetch::All])?
            .pop()
            .unwrap_or_else(|| {
                Err(Error::new(
                    format!("GetAll {name}"),
                    ErrorKind::Protocol,
                    "no reply",
                ))
            })
    }

    /// Properties of many units (paths from [`Systemd::list_units_by_names`]),
    /// pipelined with at most [`MAX_IN_FLIGHT`] calls outstanding: a timer's
    /// Timer interface (one small GetAll), a service's last-run properties
    /// (a few Gets; `detailed` adds the exit status and `InvocationID`).
    /// Never whole property sets: the Unit interface's `UnitFileState` costs
    /// systemd 252 a scan of the unit folders per unit (half a minute for
    /// 1,000 jobs), and a Service's GetAll carries ~200 properties.
    pub fn bulk_properties(
        &self,
        units: &[(String, OwnedObjectPath)],
        detailed: bool,
    ) -> Result<Vec<Result<UnitProperties>>> {
        self.read(units, |name, _| {
            if name.ends_with(".timer") {
                vec![Fetch::Interface("org.freedesktop.systemd1.Timer")]
            } else if name.ends_with(".service") {
                // A few small Gets: a Service's GetAll reply carries ~200
                // properties that systemd must serialize and we must skip.
                let mut fetch: Vec<Fetch> = SERVICE_PROPS.map(Fetch::Property).to_vec();
                if detailed {
                    fetch.extend(
                        [
                            Property::ExecMainStatus,
                            Property::ExecMainCode,
                            Property::InvocationId,
                        ]
                        .map(Fetch::Property),
                    );
                }
                fetch
            } else {
                vec![Fetch::All]
            }
        })
    }

    /// A few properties of each unit, pipelined like
    /// [`Systemd::bulk_properties`]: for the handful of units that need more
    /// than their load and active state (a failed service's `Result`, a
    /// unit's `LoadError`).
    pub fn selected_properties(
        &self,
        units: &[(String, OwnedObjectPath)],
        props: &[Property],
    ) -> Result<Vec<Result<UnitProperties>>> {
        self.read(units, |_, _| {
            props.iter().map(|p| Fetch::Property(*p)).collect()
        })
    }

    /// Makes the calls `fetch` gives for each unit, all pipelined, and
    /// decodes each unit's replies into its properties; a unit any of whose
    /// calls failed is that (first) error.
    fn read(
        &self,
        units: &[(String, OwnedObjectPath)],
        fetch: impl Fn(&str, &OwnedObjectPath) -> Vec<Fetch>,
    ) -> Result<Vec<Result<UnitProperties>>> {
        let calls: Vec<Call<'_>> = units
            .iter()
            .enumerate()
            .flat_map(|(unit, (name, path))| {
                fetch(name, path).into_iter().map(move |fetch| Call {
                    unit,
                    name,
                    path,
                    fetch,
                })
            })
            .collect();
        let replies = self.bulk_raw(&calls)?;
        Ok(merge(units, &calls, replies))
    }

    /// Sends every call and collects the replies, in order, with at most
    /// [`MAX_IN_FLIGHT`] outstanding. The calls go out as raw messages and
    /// the replies come back through one message stream, matched by serial:
    /// zbus's own `call_method` registers every call and arms a timer for
    /// its method timeout (an eventfd write and a timerfd update each), which
    /// for a thousand small reads cost more than the reads. One deadline
    /// covers the whole batch instead.
    fn bulk_raw(&self, calls: &[Call<'_>]) -> Result<Vec<Result<Props>>> {
        use std::num::NonZeroU32;
        use zbus::message::{Message, Type};

        let conn = self.conn.inner().clone();
        let deadline = Instant::now() + self.timeout;
        zbus::block_on(async move {
            let fail = |e: zbus::Error| Error::from_zbus("reading unit properties", e);
            // Subscribed before the first call goes out: no reply is missed.
            let mut replies = zbus::MessageStream::from(&conn);
            let mut timer = async_io::Timer::at(deadline);
            let mut results: Vec<Option<Result<Props>>> = (0..calls.len()).map(|_| None).collect();
            let mut pending: HashMap<NonZeroU32, usize> = HashMap::new();
            let mut next = 0;
            let mut done = 0;
            while done < calls.len() {
                while next < calls.len() && pending.len() < MAX_IN_FLIGHT {
                    let Call { path, fetch, .. } = &calls[next];
                    let builder = Message::method_call(
                        path.as_ref(),
                        if matches!(fetch, Fetch::Property(..)) {
                            "Get"
                        } else {
                            "GetAll"
                        },
                    )
                    .and_then(|b| b.destination("org.freedesktop.systemd1"))
                    .and_then(|b| b.interface("org.freedesktop.DBus.Properties"))
                    .map_err(fail)?;
                    let msg = match fetch {
                        Fetch::Property(prop) => builder.build(&(prop.interface(), prop.name())),
                        Fetch::Interface(iface) => builder.build(&(*iface,)),
                        // An empty interface name asks sd-bus for the
                        // properties of every interface of the object.
                        Fetch::All => builder.build(&("",)),
                    }
                    .map_err(fail)?;
                    pending.insert(msg.primary_header().serial_num(), next);
                    conn.send(&msg).await.map_err(fail)?;
                    next += 1;
                }
                let reply = match futures_util::future::select(replies.next(), &mut timer).await {
                    futures_util::future::Either::Left((Some(reply), _)) => reply.map_err(fail)?,
                    futures_util::future::Either::Left((None, _)) => {
                        return Err(fail(zbus::Error::InputOutput(std::sync::Arc::new(
                            std::io::Error::new(
                                std::io::ErrorKind::ConnectionAborted,
                                "the bus connection closed",
                            ),
                        ))));
                    }
                    futures_util::future::Either::Right(_) => {
                        return Err(Error::new(
                            "reading unit properties",
                            ErrorKind::Timeout,
                            format!(
                                "systemd answered {done} of {} calls in {:?}",
                                calls.len(),
                                self.timeout
                            ),
                        ));
                    }
                };
                if !matches!(reply.message_type(), Type::MethodReturn | Type::Error) {
                    continue;
                }
                let Some(index) = reply
                    .header()
                    .reply_serial()
                    .and_then(|serial| pending.remove(&serial))
                else {
                    continue;
                };
                let Call { name, fetch, .. } = &calls[index];
                let op = || format!("reading properties of {name}");
                let value = if reply.message_type() == Type::Error {
                    Err(Error::from_zbus(op(), zbus::Error::from(reply)))
                } else {
                    let body = reply.body();
                    let decoded = match fetch {
                        Fetch::Property(prop) => body
                            .deserialize::<OwnedValue>()
                            .and_then(|value| Props::one(*prop, value).map_err(zbus::Error::from)),
                        Fetch::Interface(_) | Fetch::All => body.deserialize::<Props>(),
                    };
                    decoded.map_err(|e| Error::from_zbus(op(), e))
                };
                results[index] = Some(value);
                done += 1;
            }
            Ok(results
                .into_iter()
                .map(|r| {
                    r.unwrap_or_else(|| {
                        Err(Error::new(
                            "reading unit properties",
                            ErrorKind::Protocol,
                            "a call was not answered",
                        ))
                    })
                })
                .collect())
        })
    }
}

/// Each unit's replies written into its properties, in call order; the
/// first failed call makes the unit an error.
fn merge(
    units: &[(String, OwnedObjectPath)],
    calls: &[Call<'_>],
    replies: Vec<Result<Props>>,
) -> Vec<Result<UnitProperties>> {
    let mut out: Vec<Result<UnitProperties>> = units
        .iter()
        .map(|(name, _)| Ok(UnitProperties::named(name)))
        .collect();
    for (call, reply) in calls.iter().zip(replies) {
        let Some(slot) = out.get_mut(call.unit) else {
            continue;
        };
        match (slot.as_mut(), reply) {
            (Ok(unit), Ok(props)) => props.apply(unit),
            (Ok(_), Err(e)) => *slot = Err(e),
            (Err(_), _) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use zvariant::{Value, serialized::Context, to_bytes};

    /// A `GetAll` reply body as systemd sends it, decoded as jobctl does.
    fn decode(entries: Vec<(&str, Value<'_>)>) -> UnitProperties {
        let dict: HashMap<&str, Value<'_>> = entries.into_iter().collect();
        let ctxt = Context::new_dbus(zvariant::LE, 0);
        let bytes = to_bytes(ctxt, &dict).unwrap();
        let (props, _): (Props, _) = bytes.deserialize().unwrap();
        let mut unit = UnitProperties::named("x.service");
        props.apply(&mut unit);
        unit
    }

    #[test]
    fn a_getall_reply_decodes_into_its_fields_and_skips_the_rest() {
        let unit = decode(vec![
            ("LoadState", Value::from("bad-setting")),
            ("ActiveState", Value::from("failed")),
            ("InvocationID", Value::from(vec![0x0fu8, 0xa0])),
            ("ExecMainStatus", Value::from(-3i32)),
            ("MainPID", Value::from(42u32)),
            (
                "LoadError",
                Value::from(("org.freedesktop.systemd1.BadUnitSetting", "Bad setting.")),
            ),
            ("ConditionResult", Value::from(false)),
            (
                "Conditions",
                Value::from(vec![
                    ("ConditionPathExists", false, true, "/srv/ready", -1i32),
                    ("ConditionUser", true, false, "root", 1i32),
                ]),
            ),
            // Properties jobctl does not read, of other types.
            ("Names", Value::from(vec!["x.service", "y.service"])),
            ("CPUWeight", Value::from(100u64)),
        ]);
        assert_eq!(unit.load_state, "bad-setting");
        assert_eq!(unit.active_state, "failed");
        assert_eq!(unit.invocation_id, "0fa0");
        assert_eq!(unit.exec_main_status, -3);
        assert_eq!(unit.main_pid, 42);
        assert_eq!(
            unit.load_error_name,
            "org.freedesktop.systemd1.BadUnitSetting"
        );
        assert_eq!(unit.load_error, "Bad setting.");
        assert!(!unit.condition_result);
        assert!(unit.assert_result, "not in the reply: met");
        assert_eq!(unit.failed_conditions, ["ConditionPathExists=!/srv/ready"]);
        assert_eq!(unit.result, "", "not in the reply");
    }

    #[test]
    fn one_get_fills_its_field_and_a_wrong_type_is_an_error() {
        let p = Props::one(Property::ExecMainCode, OwnedValue::from(1i32)).unwrap();
        let mut unit = UnitProperties::named("x.service");
        p.apply(&mut unit);
        assert_eq!(unit.exec_main_code, 1);
        assert!(Props::one(Property::ExecMainCode, OwnedValue::from(1u64)).is_err());
        assert!(Props::one(Property::Result, OwnedValue::from(true)).is_err());
    }

    #[test]
    fn a_unit_with_one_failed_call_is_that_error() {
        let path = OwnedObjectPath::try_from("/u").unwrap();
        let units = vec![
            ("a.service".to_string(), path.clone()),
            ("b.service".to_string(), path.clone()),
        ];
        let calls: Vec<Call<'_>> = [(0, Property::Result), (0, Property::ExecMainCode)]
            .into_iter()
            .chain([(1, Property::Result), (1, Property::ExecMainCode)])
            .map(|(unit, p)| Call {
                unit,
                name: &units[unit].0,
                path: &path,
                fetch: Fetch::Property(p),
            })
            .collect();
        let failed = || Err(Error::new("Get", ErrorKind::NoSuchUnit, "gone"));
        let replies = vec![
            Props::one(
                Property::Result,
                OwnedValue::try_from(Value::from("success")).unwrap(),
            )
            .map_err(|e| Error::from_zbus("x", e.into())),
            Props::one(Property::ExecMainCode, OwnedValue::from(1i32))
                .map_err(|e| Error::from_zbus("x", e.into())),
            Props::one(
                Property::Result,
                OwnedValue::try_from(Value::from("success")).unwrap(),
            )
            .map_err(|e| Error::from_zbus("x", e.into())),
            failed(),
        ];
        let merged = merge(&units, &calls, replies);
        let a = merged[0].as_ref().unwrap();
        assert_eq!((a.result.as_str(), a.exec_main_code), ("success", 1));
        assert_eq!(
            merged[1]
                .as_ref()
                .map(|u| u.name.clone())
                .unwrap_err()
                .kind(),
            ErrorKind::NoSuchUnit
        );
    }
}
