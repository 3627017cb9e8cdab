"""The door: its daemon, its decisions, and the services the CLI and the panel use about doors.

The daemon (``accessd run``):

- ``daemon``: ``Daemon``: lifecycle (preflight, start, run, stop, shutdown), the sensor and door
  board threads, and carrying out the logic's actions (records committed before the relay);
- ``logic``: ``DoorLogic``, the state machine (fingers, keypad, board events, time) returning
  actions (``Record``, ``Pulse``, ``RaiseAlarm``, ``WipeSensor``, ``CountPinAttempt``,
  ``VerifyFinger``); the door's mode (finger, PIN, either, both) and the second factor awaited;
  it reads through a ``Directory`` and writes nothing;
- ``decision``: ``decide``, a pure function of who, where and when, and ``check_grants``, the
  zone grants' rule (schedule, holiday, validity) naming what refused;
- ``directory``: ``SqlDirectory``, the logic's lookups (by this door's slot, by code, by code
  and PIN, the person's grants covering the door with its mode), read only;
- ``pin_attempts``: counts PIN attempts towards a person's lockout, when the logic asks;
- ``health``: ``DeviceHealth``, the one reconnect path of both devices, owned by each device's
  thread (others only ``suspect``), retried every 0.25 s;
- ``jobs``: the sensor thread's typed jobs (wipe, reconcile, enrol), queued and run in turn;
- ``recorder``: ``EventRecorder``, events into the database, or into the reserve journal while
  the database fails, and back, in order and exactly once; the database's health and alarm;
- ``journal``: ``ReserveJournal``, the preallocated file of fixed-size records behind it;
- ``supervision``: systemd's notify protocol (``READY=1``, ``STATUS=``, ``STOPPING=1``) and its
  watchdog, pinged only while every loop's heartbeat is fresh;
- ``relay``: ``pulse``, releasing the lock and knowing what that did (asking the board when its
  acknowledgement does not come);
- ``metrics``: ``DoorMetrics``, the daemon's Prometheus registry: decisions, latency, device
  faults and reconnects, alarms; open alarms, pending commands and the journal's depth read at
  each scrape (served by ``accessd.metrics``).

Shared by the daemon, ``accessd`` (CLI) and the panel:

- ``command_table``: how the CLI and the panel ask a door's daemon for hardware work, and
  follow it (a resync's counts: ``CommandProgress``, ``door_work``);
- ``remote_unlock``: ``request_unlock``, the reason's limit and message;
- ``alarms``: raise (one open per door and kind), the one open-alarm query and count, clear,
  what each kind is called and one alarm in a line;
- ``status``: the daemon's status report (row, and file beside the database), and door states
  judged by one online threshold;
- ``devices``: each device of a door (daemon, sensor, door board, database) in the words
  ``accessd status``, the dashboard and the API all show: state, last contact, the problem
  in plain words and what to do; ``problem_of`` sorts a driver's fault for the report;
- ``doors``: a door by name or id; the daemon registers its own;
- ``sensor_identity``: is the sensor the one this door provisioned? (a swapped one is refused
  until staff approve it).

The hot path (finger -> search -> decision -> event committed -> relay) runs on the sensor
thread through ``daemon``, ``logic``, ``directory`` (prebuilt Core statements: the slot's
person, then the door's mode and the grants over its zone chain),
``decision``, ``recorder``, ``accessd.history.chain.record_event`` and ``relay``, with
everything imported at start.
This module imports nothing, so that importing one room does not load the others.
"""
