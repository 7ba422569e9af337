//! ApiVersions: the APIs and versions Sluice serves; a client newer than Sluice gets the
//! list in a v0 answer (with UNSUPPORTED_VERSION) and retries with a version we have.

use kafka_protocol::messages::api_versions_response::ApiVersion;

use super::*;

pub(super) fn api_versions(version: i16, body: &mut Bytes) -> Result<Reply, String> {
    let keys: Vec<ApiVersion> = SUPPORTED
        .iter()
        .map(|(k, min, max)| {
            ApiVersion::default()
                .with_api_key(*k as i16)
                .with_min_version(*min)
                .with_max_version(*max)
        })
        .collect();
    if !(0..=4).contains(&version) {
        // A client newer than us: answer in v0 so it can read the versions we have.
        let response = ApiVersionsResponse::default()
            .with_error_code(UNSUPPORTED_VERSION)
            .with_api_keys(keys);
        return reply(&response, 0);
    }
    let _request: ApiVersionsRequest = decode(body, version)?;
    reply(
        &ApiVersionsResponse::default()
            .with_error_code(NONE)
            .with_api_keys(keys),
        version,
    )
}
