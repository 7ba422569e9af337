//! The group coordinator: consumer groups' membership and rebalances, as Kafka's classic
//! protocol runs them (JoinGroup, SyncGroup, Heartbeat, LeaveGroup). The broker never reads
//! the members' subscriptions or assignments: it picks a protocol (assignor) every member
//! supports, names a leader, hands the leader every member's metadata and relays the
//! leader's assignments back — the range and round-robin assignors run in the clients, as
//! in Kafka.
//!
//! Connections block in JoinGroup until the rebalance completes (every member rejoined, or
//! the rebalance timeout dropped those that did not) and in SyncGroup until the leader sent
//! the assignments; a timer thread evicts members whose session timed out. Everything is
//! behind one mutex with one condition variable: groups are small and their calls rare.
//! Membership lives in memory; committed offsets live in the log (a restart makes members
//! rejoin, as a coordinator failover does in Kafka).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

// Kafka's error codes for group calls.
pub(crate) const NONE: i16 = 0;
pub(crate) const COORDINATOR_NOT_AVAILABLE: i16 = 15;
pub(crate) const ILLEGAL_GENERATION: i16 = 22;
pub(crate) const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
pub(crate) const INVALID_GROUP_ID: i16 = 24;
pub(crate) const UNKNOWN_MEMBER_ID: i16 = 25;
pub(crate) const INVALID_SESSION_TIMEOUT: i16 = 26;
pub(crate) const REBALANCE_IN_PROGRESS: i16 = 27;
pub(crate) const MEMBER_ID_REQUIRED: i16 = 79;

/// Broker settings for groups (`server.properties` names in the comments).
#[derive(Debug, Clone)]
pub struct GroupSettings {
    /// `group.initial.rebalance.delay.ms`: how long an empty group's first rebalance waits
    /// for more members before completing.
    pub initial_rebalance_delay: Duration,
    /// `group.min.session.timeout.ms` and `group.max.session.timeout.ms`.
    pub min_session_timeout: Duration,
    pub max_session_timeout: Duration,
}

impl Default for GroupSettings {
    fn default() -> Self {
        GroupSettings {
            initial_rebalance_delay: Duration::from_millis(3000),
            min_session_timeout: Duration::from_millis(6000),
            max_session_timeout: Duration::from_millis(1_800_000),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl GroupState {
    pub(crate) fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
        }
    }
}

/// A JoinGroup call, decoded.
pub(crate) struct JoinRequest {
    pub group: String,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    /// (assignor name, subscription metadata), in the member's order of preference.
    pub protocols: Vec<(String, Vec<u8>)>,
    /// JoinGroup v4+: a first join gets a member id back with MEMBER_ID_REQUIRED and joins
    /// again with it, so a join that timed out on the client never leaves a ghost member.
    pub require_known_member_id: bool,
}

/// What a JoinGroup call gets back.
#[derive(Debug, Default)]
pub(crate) struct JoinOutcome {
    pub error: i16,
    pub generation: i32,
    pub protocol_type: String,
    pub protocol: String,
    pub leader: String,
    pub member_id: String,
    /// Every member's (id, instance id, metadata for the chosen protocol); the leader's only.
    pub members: Vec<(String, Option<String>, Vec<u8>)>,
}

impl JoinOutcome {
    fn error(error: i16, member_id: &str) -> JoinOutcome {
        JoinOutcome {
            error,
            generation: -1,
            member_id: member_id.to_string(),
            ..JoinOutcome::default()
        }
    }
}

/// A group as DescribeGroups shows it.
pub(crate) struct GroupDescription {
    pub state: &'static str,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<DescribedMember>,
}

pub(crate) struct DescribedMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Vec<u8>,
    pub assignment: Vec<u8>,
}

struct Member {
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    protocol_type: String,
    protocols: Vec<(String, Vec<u8>)>,
    assignment: Vec<u8>,
    last_seen: Instant,
    /// Joined the rebalance in progress (its JoinGroup call is waiting).
    awaiting_join: bool,
    /// The rebalance's answer, taken by the waiting JoinGroup call.
    join_result: Option<JoinOutcome>,
    /// Calls of this member blocked in the coordinator: not expired meanwhile.
    calls_in_flight: u32,
    joined_at: u64,
}

struct Group {
    state: GroupState,
    generation: i32,
    protocol_type: String,
    protocol: String,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, until they join or time out.
    pending: HashMap<String, Instant>,
    /// A rebalance in progress completes when every member joined and this time passed...
    not_before: Instant,
    /// ...or at this time, without those that did not.
    deadline: Instant,
}

impl Group {
    fn new(now: Instant) -> Group {
        Group {
            state: GroupState::Empty,
            generation: 0,
            protocol_type: String::new(),
            protocol: String::new(),
            leader: None,
            members: BTreeMap::new(),
            pending: HashMap::new(),
            not_before: now,
            deadline: now,
        }
    }

    /// Starts a rebalance: members must join again.
    fn prepare_rebalance(&mut self, now: Instant, initial_delay: Duration) {
        let timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        if self.state != GroupState::PreparingRebalance {
            self.not_before = if self.state == GroupState::Empty {
                now + initial_delay.min(timeout)
            } else {
                now
            };
            self.deadline = now + timeout;
        }
        self.state = GroupState::PreparingRebalance;
    }

    /// Completes the rebalance in progress when it may: a new generation, a protocol, a
    /// leader, and every waiting JoinGroup's answer.
    fn try_complete(&mut self, now: Instant) -> bool {
        if self.state != GroupState::PreparingRebalance {
            return false;
        }
        let all_joined = self.members.values().all(|m| m.awaiting_join);
        if !(all_joined && now >= self.not_before) && now < self.deadline {
            return false;
        }
        self.members.retain(|_, m| m.awaiting_join);
        self.generation += 1;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.leader = None;
            self.protocol.clear();
            return true;
        }
        self.protocol = self.choose_protocol();
        self.protocol_type = self
            .members
            .values()
            .next()
            .map(|m| m.protocol_type.clone())
            .unwrap_or_default();
        let leader = match &self.leader {
            Some(l) if self.members.contains_key(l) => l.clone(),
            _ => self
                .members
                .iter()
                .min_by_key(|(_, m)| m.joined_at)
                .map(|(id, _)| id.clone())
                .unwrap_or_default(),
        };
        self.leader = Some(leader.clone());
        let everyone: Vec<(String, Option<String>, Vec<u8>)> = self
            .members
            .iter()
            .map(|(id, m)| {
                (
                    id.clone(),
                    m.instance_id.clone(),
                    m.metadata(&self.protocol),
                )
            })
            .collect();
        for (id, m) in self.members.iter_mut() {
            m.awaiting_join = false;
            m.assignment.clear();
            m.last_seen = now;
            m.join_result = Some(JoinOutcome {
                error: NONE,
                generation: self.generation,
                protocol_type: self.protocol_type.clone(),
                protocol: self.protocol.clone(),
                leader: leader.clone(),
                member_id: id.clone(),
                members: if *id == leader {
                    everyone.clone()
                } else {
                    Vec::new()
                },
            });
        }
        self.state = GroupState::CompletingRebalance;
        true
    }

    /// The protocol most members list first among those every member supports (Kafka's
    /// vote).
    fn choose_protocol(&self) -> String {
        let supported_by_all = |name: &str| {
            self.members
                .values()
                .all(|m| m.protocols.iter().any(|(p, _)| p == name))
        };
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some((p, _)) = m.protocols.iter().find(|(p, _)| supported_by_all(p)) {
                *votes.entry(p.as_str()).or_default() += 1;
            }
        }
        votes
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map(|(p, _)| p.to_string())
            .unwrap_or_default()
    }

    /// Whether a joining member's protocols fit the group's.
    fn accepts(&self, protocol_type: &str, protocols: &[(String, Vec<u8>)]) -> bool {
        if protocols.is_empty() || protocol_type.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        self.members
            .values()
            .all(|m| m.protocol_type == protocol_type)
            && protocols.iter().any(|(p, _)| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(q, _)| q == p))
            })
    }

    /// Drops a member; what the group does next.
    fn remove(&mut self, id: &str, now: Instant, initial_delay: Duration) {
        if self.members.remove(id).is_none() {
            return;
        }
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now, initial_delay);
                // With nobody left to rejoin it completes at once (to Empty).
                self.try_complete(now);
            }
            GroupState::PreparingRebalance => {
                self.try_complete(now);
            }
            GroupState::Empty => {}
        }
    }
}

impl Member {
    fn metadata(&self, protocol: &str) -> Vec<u8> {
        self.protocols
            .iter()
            .find(|(p, _)| p == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

struct Groups {
    groups: HashMap<String, Group>,
    next_member: u64,
    stopping: bool,
}

/// Every group this broker coordinates (all of them: it is the only broker).
pub(crate) struct Coordinator {
    state: Mutex<Groups>,
    changed: Condvar,
    settings: GroupSettings,
}

/// How long a blocked call sleeps at most before looking at the clock again.
const RECHECK: Duration = Duration::from_millis(100);

impl Coordinator {
    pub(crate) fn new(settings: GroupSettings) -> Coordinator {
        Coordinator {
            state: Mutex::new(Groups {
                groups: HashMap::new(),
                next_member: 0,
                stopping: false,
            }),
            changed: Condvar::new(),
            settings,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Groups> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, Groups>) -> MutexGuard<'a, Groups> {
        match self.changed.wait_timeout(guard, RECHECK) {
            Ok((g, _)) => g,
            Err(p) => p.into_inner().0,
        }
    }

    /// Wakes every blocked call with COORDINATOR_NOT_AVAILABLE (the server is stopping).
    pub(crate) fn shut_down(&self) {
        self.lock().stopping = true;
        self.changed.notify_all();
    }

    /// The timer's work: evicts members whose session timed out, completes rebalances
    /// whose deadline passed. Returns false once stopping.
    pub(crate) fn tick(&self) -> bool {
        let now = Instant::now();
        let mut groups = self.lock();
        if groups.stopping {
            return false;
        }
        let delay = self.settings.initial_rebalance_delay;
        let mut changed = false;
        for group in groups.groups.values_mut() {
            group.pending.retain(|_, until| *until > now);
            let expired: Vec<String> = group
                .members
                .iter()
                .filter(|(_, m)| {
                    m.calls_in_flight == 0
                        && !m.awaiting_join
                        && now.duration_since(m.last_seen) > m.session_timeout
                })
                .map(|(id, _)| id.clone())
                .collect();
            for id in expired {
                tracing::info!(member = %id, "session timed out: removing the member");
                group.remove(&id, now, delay);
                changed = true;
            }
            changed |= group.try_complete(now);
        }
        drop(groups);
        if changed {
            self.changed.notify_all();
        }
        // Sleep until the next look (woken early at shutdown).
        let groups = self.lock();
        if groups.stopping {
            return false;
        }
        drop(self.wait(groups));
        true
    }

    pub(crate) fn join(&self, request: JoinRequest) -> JoinOutcome {
        let now = Instant::now();
        let settings = &self.settings;
        if request.group.is_empty() {
            return JoinOutcome::error(INVALID_GROUP_ID, &request.member_id);
        }
        if request.session_timeout < settings.min_session_timeout
            || request.session_timeout > settings.max_session_timeout
        {
            return JoinOutcome::error(INVALID_SESSION_TIMEOUT, &request.member_id);
        }
        let mut groups = self.lock();
        if groups.stopping {
            return JoinOutcome::error(COORDINATOR_NOT_AVAILABLE, &request.member_id);
        }
        groups.next_member += 1;
        let serial = groups.next_member;
        let group = groups
            .groups
            .entry(request.group.clone())
            .or_insert_with(|| Group::new(now));
        let mut member_id = request.member_id.clone();
        let known = group.members.contains_key(&member_id);
        if !known && !group.accepts(&request.protocol_type, &request.protocols) {
            return JoinOutcome::error(INCONSISTENT_GROUP_PROTOCOL, &member_id);
        }
        if member_id.is_empty() {
            // A static member (group.instance.id) keeps its id across restarts.
            let same_instance = request.instance_id.as_ref().and_then(|instance| {
                group
                    .members
                    .iter()
                    .find(|(_, m)| m.instance_id.as_ref() == Some(instance))
                    .map(|(id, _)| id.clone())
            });
            member_id = match same_instance {
                Some(id) => id,
                None => format!("{}-{}", request.client_id, member_suffix(serial)),
            };
            if request.require_known_member_id
                && request.instance_id.is_none()
                && !group.members.contains_key(&member_id)
            {
                group
                    .pending
                    .insert(member_id.clone(), now + request.session_timeout);
                return JoinOutcome::error(MEMBER_ID_REQUIRED, &member_id);
            }
        } else if !known && group.pending.remove(&member_id).is_none() {
            return JoinOutcome::error(UNKNOWN_MEMBER_ID, &member_id);
        }
        let joined_at = group
            .members
            .get(&member_id)
            .map_or(serial, |m| m.joined_at);
        if let Some(m) = group.members.get(&member_id)
            && !group.accepts_rejoin(m, &request)
        {
            return JoinOutcome::error(INCONSISTENT_GROUP_PROTOCOL, &member_id);
        }
        group.members.insert(
            member_id.clone(),
            Member {
                instance_id: request.instance_id.clone(),
                client_id: request.client_id.clone(),
                client_host: request.client_host.clone(),
                session_timeout: request.session_timeout,
                rebalance_timeout: request.rebalance_timeout,
                protocol_type: request.protocol_type.clone(),
                protocols: request.protocols,
                assignment: Vec::new(),
                last_seen: now,
                awaiting_join: true,
                join_result: None,
                calls_in_flight: 1,
                joined_at,
            },
        );
        group.prepare_rebalance(now, settings.initial_rebalance_delay);
        group.try_complete(now);
        // Waiting joins see the completion; members in SyncGroup learn of the rebalance.
        self.changed.notify_all();
        // Wait for the rebalance's answer.
        loop {
            let now = Instant::now();
            let stopping = groups.stopping;
            let Some(group) = groups.groups.get_mut(&request.group) else {
                return JoinOutcome::error(UNKNOWN_MEMBER_ID, &member_id);
            };
            if group.try_complete(now) {
                self.changed.notify_all();
            }
            let Some(member) = group.members.get_mut(&member_id) else {
                return JoinOutcome::error(UNKNOWN_MEMBER_ID, &member_id);
            };
            if let Some(result) = member.join_result.take() {
                member.calls_in_flight = member.calls_in_flight.saturating_sub(1);
                member.last_seen = now;
                return result;
            }
            if stopping {
                member.calls_in_flight = member.calls_in_flight.saturating_sub(1);
                return JoinOutcome::error(COORDINATOR_NOT_AVAILABLE, &member_id);
            }
            groups = self.wait(groups);
        }
    }

    /// SyncGroup: the leader hands in the assignments; every member gets its own.
    pub(crate) fn sync(
        &self,
        group_id: &str,
        member_id: &str,
        generation: i32,
        assignments: Vec<(String, Vec<u8>)>,
    ) -> (i16, Vec<u8>, String, String) {
        let failed = |e: i16| (e, Vec::new(), String::new(), String::new());
        let mut groups = self.lock();
        if let Err(e) = check_member(&mut groups, group_id, member_id, generation) {
            return failed(e);
        }
        let Some(group) = groups.groups.get_mut(group_id) else {
            return failed(UNKNOWN_MEMBER_ID);
        };
        let is_leader = group.leader.as_deref() == Some(member_id);
        if group.state == GroupState::CompletingRebalance && is_leader {
            let mut given: HashMap<String, Vec<u8>> = assignments.into_iter().collect();
            for (id, m) in group.members.iter_mut() {
                m.assignment = given.remove(id).unwrap_or_default();
            }
            group.state = GroupState::Stable;
            self.changed.notify_all();
        }
        if let Some(m) = group.members.get_mut(member_id) {
            m.calls_in_flight += 1;
        }
        let result = loop {
            if groups.stopping {
                break failed(COORDINATOR_NOT_AVAILABLE);
            }
            let Some(group) = groups.groups.get_mut(group_id) else {
                return failed(UNKNOWN_MEMBER_ID);
            };
            let (state, current, protocol_type, protocol) = (
                group.state,
                group.generation,
                group.protocol_type.clone(),
                group.protocol.clone(),
            );
            let Some(member) = group.members.get_mut(member_id) else {
                return failed(UNKNOWN_MEMBER_ID);
            };
            if current != generation || state == GroupState::PreparingRebalance {
                break failed(REBALANCE_IN_PROGRESS);
            }
            if state == GroupState::Stable {
                break (NONE, member.assignment.clone(), protocol_type, protocol);
            }
            groups = self.wait(groups);
        };
        if let Some(m) = groups
            .groups
            .get_mut(group_id)
            .and_then(|g| g.members.get_mut(member_id))
        {
            m.calls_in_flight = m.calls_in_flight.saturating_sub(1);
            m.last_seen = Instant::now();
        }
        result
    }

    pub(crate) fn heartbeat(&self, group_id: &str, member_id: &str, generation: i32) -> i16 {
        let mut groups = self.lock();
        if let Err(e) = check_member(&mut groups, group_id, member_id, generation) {
            return e;
        }
        match groups.groups.get(group_id).map(|g| g.state) {
            Some(GroupState::PreparingRebalance) => REBALANCE_IN_PROGRESS,
            _ => NONE,
        }
    }

    /// LeaveGroup: each member's error (UNKNOWN_MEMBER_ID for one not in the group).
    /// A member may be named by its instance id alone (static members, v3+).
    pub(crate) fn leave(&self, group_id: &str, members: &[(String, Option<String>)]) -> Vec<i16> {
        let now = Instant::now();
        let mut groups = self.lock();
        let Some(group) = groups.groups.get_mut(group_id) else {
            return vec![UNKNOWN_MEMBER_ID; members.len()];
        };
        let errors = members
            .iter()
            .map(|(id, instance)| {
                let id = if id.is_empty() {
                    group
                        .members
                        .iter()
                        .find(|(_, m)| m.instance_id.is_some() && m.instance_id == *instance)
                        .map(|(id, _)| id.clone())
                        .unwrap_or_default()
                } else {
                    id.clone()
                };
                if group.members.contains_key(&id) {
                    group.remove(&id, now, self.settings.initial_rebalance_delay);
                    NONE
                } else {
                    UNKNOWN_MEMBER_ID
                }
            })
            .collect();
        drop(groups);
        self.changed.notify_all();
        errors
    }

    /// Whether an OffsetCommit may write (Kafka's rules): simple consumers (generation < 0)
    /// only while the group has no members; members of the current generation otherwise.
    pub(crate) fn may_commit(&self, group_id: &str, member_id: &str, generation: i32) -> i16 {
        let mut groups = self.lock();
        let state = groups.groups.get(group_id).map(|g| g.state);
        match state {
            None | Some(GroupState::Empty) if generation < 0 => NONE,
            None => ILLEGAL_GENERATION,
            Some(GroupState::CompletingRebalance) => REBALANCE_IN_PROGRESS,
            Some(_) => match check_member(&mut groups, group_id, member_id, generation) {
                Ok(()) => NONE,
                Err(e) => e,
            },
        }
    }

    /// Every group with members or a past (name, protocol type, state).
    pub(crate) fn list(&self) -> Vec<(String, String, &'static str)> {
        let groups = self.lock();
        let mut out: Vec<_> = groups
            .groups
            .iter()
            .map(|(name, g)| (name.clone(), g.protocol_type.clone(), g.state.name()))
            .collect();
        out.sort();
        out
    }

    pub(crate) fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        let groups = self.lock();
        let group = groups.groups.get(group_id)?;
        Some(GroupDescription {
            state: group.state.name(),
            protocol_type: group.protocol_type.clone(),
            protocol: group.protocol.clone(),
            members: group
                .members
                .iter()
                .map(|(id, m)| DescribedMember {
                    id: id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: m.metadata(&group.protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        })
    }
}

impl Group {
    /// A known member joining again must keep the group's protocol type and still share a
    /// protocol with the others.
    fn accepts_rejoin(&self, member: &Member, request: &JoinRequest) -> bool {
        member.protocol_type == request.protocol_type
            && request.protocols.iter().any(|(p, _)| {
                self.members
                    .values()
                    .filter(|m| !std::ptr::eq(*m, member))
                    .all(|m| m.protocols.iter().any(|(q, _)| q == p))
            })
    }
}

/// The member exists and is of this generation; a heartbeat's worth of liveness.
fn check_member(
    groups: &mut Groups,
    group_id: &str,
    member_id: &str,
    generation: i32,
) -> Result<(), i16> {
    if groups.stopping {
        return Err(COORDINATOR_NOT_AVAILABLE);
    }
    let group = groups.groups.get_mut(group_id).ok_or(UNKNOWN_MEMBER_ID)?;
    let current = group.generation;
    let member = group.members.get_mut(member_id).ok_or(UNKNOWN_MEMBER_ID)?;
    member.last_seen = Instant::now();
    if generation != current {
        return Err(ILLEGAL_GENERATION);
    }
    Ok(())
}

/// A member id's unique part, shaped like Kafka's (a UUID) from a serial and the clock.
fn member_suffix(serial: u64) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mixed = (nanos ^ serial.rotate_left(32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        (mixed >> 32) as u32,
        (mixed >> 16) as u16,
        mixed as u16,
        serial as u16,
        nanos & 0xffff_ffff_ffff
    )
}
