//! JoinGroup, SyncGroup, Heartbeat, LeaveGroup, ListGroups and DescribeGroups: the wire
//! side of the group coordinator (`coordinator.rs` owns the state machine).

use super::*;
use crate::kafka::coordinator::JoinRequest;

fn text(s: &StrBytes) -> String {
    s.to_string()
}

fn bytes_of(v: Vec<u8>) -> Bytes {
    Bytes::from(v)
}

pub(super) fn join_group(
    request: JoinGroupRequest,
    version: i16,
    header: &RequestHeader,
    shared: &Shared,
    conn: &Conn,
) -> Result<Reply, String> {
    use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
    let session = request.session_timeout_ms.max(0) as u64;
    // v0 has no rebalance timeout: the session timeout serves as both.
    let rebalance = if version == 0 {
        session
    } else {
        request.rebalance_timeout_ms.max(0) as u64
    };
    let outcome = shared.coordinator.join(JoinRequest {
        group: request.group_id.0.to_string(),
        member_id: text(&request.member_id),
        instance_id: request.group_instance_id.as_ref().map(text),
        client_id: header.client_id.as_ref().map(text).unwrap_or_default(),
        client_host: format!("/{}", conn.peer_host),
        session_timeout: Duration::from_millis(session),
        rebalance_timeout: Duration::from_millis(rebalance),
        protocol_type: text(&request.protocol_type),
        protocols: request
            .protocols
            .iter()
            .map(|p| (text(&p.name), p.metadata.to_vec()))
            .collect(),
        require_known_member_id: version >= 4,
    });
    let mut response = JoinGroupResponse::default()
        .with_error_code(outcome.error)
        .with_generation_id(outcome.generation)
        .with_protocol_name(Some(StrBytes::from_string(outcome.protocol)))
        .with_leader(StrBytes::from_string(outcome.leader))
        .with_member_id(StrBytes::from_string(outcome.member_id))
        .with_members(
            outcome
                .members
                .into_iter()
                .map(|(id, instance, metadata)| {
                    JoinGroupResponseMember::default()
                        .with_member_id(StrBytes::from_string(id))
                        .with_group_instance_id(if version >= 5 {
                            instance.map(StrBytes::from_string)
                        } else {
                            None
                        })
                        .with_metadata(bytes_of(metadata))
                })
                .collect(),
        );
    if version >= 7 {
        response = response.with_protocol_type(Some(StrBytes::from_string(outcome.protocol_type)));
    }
    reply(&response, version)
}

pub(super) fn sync_group(
    request: SyncGroupRequest,
    version: i16,
    shared: &Shared,
) -> Result<Reply, String> {
    let (error, assignment, protocol_type, protocol) = shared.coordinator.sync(
        &request.group_id.0,
        &request.member_id,
        request.generation_id,
        request
            .assignments
            .iter()
            .map(|a| (text(&a.member_id), a.assignment.to_vec()))
            .collect(),
    );
    let mut response = SyncGroupResponse::default()
        .with_error_code(error)
        .with_assignment(bytes_of(assignment));
    if version >= 5 && error == coordinator::NONE {
        response = response
            .with_protocol_type(Some(StrBytes::from_string(protocol_type)))
            .with_protocol_name(Some(StrBytes::from_string(protocol)));
    }
    reply(&response, version)
}

pub(super) fn heartbeat(
    request: HeartbeatRequest,
    version: i16,
    shared: &Shared,
) -> Result<Reply, String> {
    let error = shared.coordinator.heartbeat(
        &request.group_id.0,
        &request.member_id,
        request.generation_id,
    );
    reply(
        &HeartbeatResponse::default().with_error_code(error),
        version,
    )
}

pub(super) fn leave_group(
    request: LeaveGroupRequest,
    version: i16,
    shared: &Shared,
) -> Result<Reply, String> {
    use kafka_protocol::messages::leave_group_response::MemberResponse;
    let group = request.group_id.0.to_string();
    if version < 3 {
        let errors = shared
            .coordinator
            .leave(&group, &[(text(&request.member_id), None)]);
        let error = errors.first().copied().unwrap_or(coordinator::NONE);
        return reply(
            &LeaveGroupResponse::default().with_error_code(error),
            version,
        );
    }
    let members: Vec<(String, Option<String>)> = request
        .members
        .iter()
        .map(|m| (text(&m.member_id), m.group_instance_id.as_ref().map(text)))
        .collect();
    let errors = shared.coordinator.leave(&group, &members);
    let responses = members
        .into_iter()
        .zip(errors)
        .map(|((id, instance), error)| {
            MemberResponse::default()
                .with_member_id(StrBytes::from_string(id))
                .with_group_instance_id(instance.map(StrBytes::from_string))
                .with_error_code(error)
        })
        .collect();
    reply(
        &LeaveGroupResponse::default().with_members(responses),
        version,
    )
}

/// Groups with members (the coordinator's) and groups known only by committed offsets
/// (Empty, as Kafka lists them).
pub(super) fn list_groups(
    request: ListGroupsRequest,
    version: i16,
    shared: &Shared,
) -> Result<Reply, String> {
    use kafka_protocol::messages::list_groups_response::ListedGroup;
    let mut groups = shared.coordinator.list();
    for name in shared.log.list_groups().map_err(|e| e.to_string())? {
        if !groups.iter().any(|(g, _, _)| *g == name) {
            groups.push((name, String::new(), "Empty"));
        }
    }
    groups.sort();
    let wanted = |state: &str| {
        request.states_filter.is_empty()
            || request
                .states_filter
                .iter()
                .any(|s| s.eq_ignore_ascii_case(state))
    };
    let listed = groups
        .into_iter()
        .filter(|(_, _, state)| wanted(state))
        .map(|(name, protocol_type, state)| {
            let g = ListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(name)))
                .with_protocol_type(StrBytes::from_string(protocol_type));
            if version >= 4 {
                g.with_group_state(StrBytes::from_static_str(state))
            } else {
                g
            }
        })
        .collect();
    reply(&ListGroupsResponse::default().with_groups(listed), version)
}

pub(super) fn describe_groups(
    request: DescribeGroupsRequest,
    version: i16,
    shared: &Shared,
) -> Result<Reply, String> {
    use kafka_protocol::messages::describe_groups_response::{
        DescribedGroup, DescribedGroupMember,
    };
    let known = shared.log.list_groups().map_err(|e| e.to_string())?;
    let groups = request
        .groups
        .iter()
        .map(|id| {
            let described = DescribedGroup::default().with_group_id(id.clone());
            let Some(d) = shared.coordinator.describe(&id.0) else {
                // Known only by its committed offsets: Empty; not known at all: Dead.
                let state = if known.iter().any(|k| **k == *id.0) {
                    "Empty"
                } else {
                    "Dead"
                };
                return described.with_group_state(StrBytes::from_static_str(state));
            };
            described
                .with_group_state(StrBytes::from_static_str(d.state))
                .with_protocol_type(StrBytes::from_string(d.protocol_type))
                .with_protocol_data(StrBytes::from_string(d.protocol))
                .with_members(
                    d.members
                        .into_iter()
                        .map(|m| {
                            DescribedGroupMember::default()
                                .with_member_id(StrBytes::from_string(m.id))
                                .with_group_instance_id(if version >= 4 {
                                    m.instance_id.map(StrBytes::from_string)
                                } else {
                                    None
                                })
                                .with_client_id(StrBytes::from_string(m.client_id))
                                .with_client_host(StrBytes::from_string(m.client_host))
                                .with_member_metadata(bytes_of(m.metadata))
                                .with_member_assignment(bytes_of(m.assignment))
                        })
                        .collect(),
                )
        })
        .collect();
    reply(
        &DescribeGroupsResponse::default().with_groups(groups),
        version,
    )
}
