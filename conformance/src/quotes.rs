//! The spec sentence(s) each check and monitor rule rests on, quoted from `sv2-spec/` with file and
//! line: a check's level is the level of these sentences, on the role they bind (a MUST on the
//! client's flag is no MUST on the server). Where the spec is silent on what the server does, the
//! quote shows what the check rests on instead, and the check is SHOULD or MAY.

/// (check id, quoted sentences with their file:line).
pub const QUOTES: &[(&str, &str)] = &[
    (
        "noise.required",
        r#"04-Protocol-Security.md:11: “Using the handshake protocol to establish secured communication is optional on the local network” / 04-Protocol-Security.md:12: “However, it is mandatory for remote access to the upstream nodes, whether they be pool mining services, job declarating services or template distributors.”"#,
    ),
    (
        "noise.act2-length",
        r#"04-Protocol-Security.md:250: “appends `e.public_key` to the buffer (64 bytes plaintext EllSwift encoded public key)” / 04-Protocol-Security.md:253: “appends `EncryptAndHash(s.public_key)` (64 bytes encrypted EllSwift encoded public key, 16 bytes MAC)” / 04-Protocol-Security.md:283: “decrypts next 90 bytes with `DecryptAndHash()` and deserialize plaintext into `SIGNATURE_NOISE_MESSAGE` (74 bytes data + 16 bytes MAC)” / 04-Protocol-Security.md:273: “Message length: 170 bytes”"#,
    ),
    (
        "noise.certificate",
        r#"04-Protocol-Security.md:292: “These parts make up a `CERTIFICATE` signed by an authority whose public key is generally known (for example from pool's website).” / 04-Protocol-Security.md:270: “Signature is issued by authority that is generally known to operate the server acting as the Noise responder” / 04-Protocol-Security.md:242: “Signature is invalid after this point in time (unix timestamp)”"#,
    ),
    (
        "noise.mac-failure-closes",
        r#"04-Protocol-Security.md:191: “Should the decryption (i.e. authentication code validation) fail at any point, the session must be terminated.” / 04-Protocol-Security.md:347: “If decryption fails, the process stops”"#,
    ),
    (
        "noise.chunked-frame",
        r#"04-Protocol-Security.md:384: “Serialized stratum-v2 body (payload) is split into 65519-byte chunks and encrypted to form 65535-bytes AEAD ciphertexts,” / 04-Protocol-Security.md:347: “The value `frame.message_length` should first be converted to the ciphertext length, and then that amount of data should be read and decrypted into plaintext payload.” / 03-Protocol-Overview.md:157: “Messages with an unknown `extension_type` which are to be processed locally (as defined above) MUST be discarded and ignored.”"#,
    ),
    (
        "noise.transport-frames",
        r#"04-Protocol-Security.md:337: “prepare the frame header for the Stratum message `message_length` is the length of the plaintext payload.” / 04-Protocol-Security.md:339: “`EncryptWithAd([], header)` - 22 bytes” / 04-Protocol-Security.md:95: “performs `ENCRYPT(k, n++, ad, plaintext)` on the underlying cipher function”"#,
    ),
    (
        "noise.handshake-reliability",
        r#"04-Protocol-Security.md:227: “receives ephemeral public key message (64 bytes plaintext EllSwift encoded public key)” / 04-Protocol-Security.md:256: “submits the buffer for sending to the initiator” / 03-Protocol-Overview.md:55: “The minimum requirement of the transport layer is to guarantee ordered delivery of the protocol messages.”"#,
    ),
    (
        "noise.survives-broken-handshakes",
        r#"no spec sentence: half-sent and abandoned handshakes are not mentioned; a robustness expectation (SHOULD), the nearest text being 03-Protocol-Overview.md:236 on answering a client's SetupConnection"#,
    ),
    (
        "setup.reply",
        r#"03-Protocol-Overview.md:236: “Server MUST respond with either a `SetupConnection.Success` or `SetupConnection.Error` message.”"#,
    ),
    (
        "setup.first-message",
        r#"03-Protocol-Overview.md:235: “This MUST be the first message sent by the client on the newly opened connection.”"#,
    ),
    (
        "setup.version-unsupported",
        r#"03-Protocol-Overview.md:236: “Server MUST respond with either a `SetupConnection.Success` or `SetupConnection.Error` message.” / 03-Protocol-Overview.md:262: “Selected version proposed by the connecting node that the upstream node supports.” / 03-Protocol-Overview.md:267: “When protocol version negotiation fails (or there is another reason why the upstream node cannot setup the connection) the server sends this message with a particular error code prior to closing the connection.” / 03-Protocol-Overview.md:243: “(currently must be 2)”"#,
    ),
    (
        "setup.version-range",
        r#"03-Protocol-Overview.md:243: “The minimum protocol version the client supports (currently must be 2)” / 03-Protocol-Overview.md:262: “Selected version proposed by the connecting node that the upstream node supports.” / 03-Protocol-Overview.md:267: “(or there is another reason why the upstream node cannot setup the connection)”"#,
    ),
    (
        "setup.unsupported-flags",
        r#"03-Protocol-Overview.md:270: “The Server MUST provide the full set of flags which it does not support in each `SetupConnection.Error` message and MUST consistently support the same set of flags across all servers on the same hostname and port number.” / 03-Protocol-Overview.md:269: “clients SHOULD send a SetupConnection message with all flags set and examine the (potentially) resulting `SetupConnection.Error` message’s flags field.”"#,
    ),
    (
        "setup.unknown-protocol",
        r#"03-Protocol-Overview.md:242: “0 = Mining Protocol 1 = Job Declaration 2 = Template Distribution Protocol” / 03-Protocol-Overview.md:267: “(or there is another reason why the upstream node cannot setup the connection)”"#,
    ),
    (
        "setup.truncated-message",
        r#"03-Protocol-Overview.md:96: “Length of the protocol message, not including this header” / 03-Protocol-Overview.md:72: “String with 8-bit length prefix L. Unsigned integer, followed by L bytes.”"#,
    ),
    (
        "setup.trailing-byte",
        r#"03-Protocol-Overview.md:96: “Length of the protocol message, not including this header” / 03-Protocol-Overview.md:170: “This model allows for structured, backward-compatible extensions while ensuring that unknown fields can be safely ignored.” / 03-Protocol-Overview.md:191: “TLV fields MUST be placed at the end of the message payload.”"#,
    ),
    (
        "ext.unknown-extension-ignored",
        r#"03-Protocol-Overview.md:157: “Messages with an unknown `extension_type` which are to be processed locally (as defined above) MUST be discarded and ignored.”"#,
    ),
    (
        "ext.request-extensions-answered",
        r#"extensions/0x0001-extensions-negotiation.md:21: “After the successful SetupConnection exchange, clients MUST send a `RequestExtensions` message to indicate the extensions they wish to use. The server responds with:” / extensions/0x0001-extensions-negotiation.md:90: “Servers MUST respond with `RequestExtensions.Error` if none of the requested extensions are supported.” / extensions/0x0001-extensions-negotiation.md:55: “Unique identifier for pairing the response.”"#,
    ),
    (
        "ext.unsupported-only-error",
        r#"extensions/0x0001-extensions-negotiation.md:90: “Servers MUST respond with `RequestExtensions.Error` if none of the requested extensions are supported.” / extensions/0x0001-extensions-negotiation.md:70: “List of unsupported extension identifiers.”"#,
    ),
    (
        "ext.ignored-without-support",
        r#"extensions/0x0001-extensions-negotiation.md:99: “Servers that do not support this extension will ignore the `RequestExtensions` message.” / 03-Protocol-Overview.md:157: “Messages with an unknown `extension_type` which are to be processed locally (as defined above) MUST be discarded and ignored.”"#,
    ),
    (
        "ext.required-enforced",
        r#"extensions/0x0001-extensions-negotiation.md:143: “If the client does not retry with the required extension, the server MUST disconnect the client.” / extensions/0x0001-extensions-negotiation.md:91: “it MUST list them in the `requested_extensions` field of `RequestExtensions.Error`.”"#,
    ),
    (
        "ext.unnegotiated-tlv-ignored",
        r#"extensions/0x0002-worker-specific-hashrate-tracking.md:77: “The server MUST ignore any unexpected TLV fields.” / 03-Protocol-Overview.md:170: “This model allows for structured, backward-compatible extensions while ensuring that unknown fields can be safely ignored.”"#,
    ),
    (
        "ext.tlv-too-long-rejected",
        r#"03-Protocol-Overview.md:194: “If a TLV field exceeds the maximum length allowed by its specification, the recipient MUST reject the message.” / extensions/0x0002-worker-specific-hashrate-tracking.md:21: “Length of the value (max 32 bytes)”"#,
    ),
    (
        "mining.both-channel-kinds",
        r#"05-Mining-Protocol.md:174: “Upstream servers which accept connections and provide work MUST support Extended Channels.” / 05-Mining-Protocol.md:176: “Thus, upstream servers providing work MUST also support Standard Channels.” / 05-Mining-Protocol.md:210: “Upstream node will not accept opening of a standard channel”"#,
    ),
    (
        "mining.max-target",
        r#"05-Mining-Protocol.md:228: “Server MUST accept the target or respond by sending OpenMiningChannel.Error message.”"#,
    ),
    (
        "mining.unique-ids",
        r#"05-Mining-Protocol.md:146: “There MUST NOT be two Channels with the same ID in the same Connection.” / 05-Mining-Protocol.md:185: “there must never be a Group Channel whose `group_channel_id` is identical to some `channel_id` of some Standard or Extended Channel within the context of the same connection.” / 05-Mining-Protocol.md:556: “The server MUST ensure that a group channel has a unique channel ID within one connection.”"#,
    ),
    (
        "mining.request-id-echo",
        r#"05-Mining-Protocol.md:236: “Client-specified request ID from OpenStandardMiningChannel message, so that the client can pair responses with open channel requests” / 05-Mining-Protocol.md:268: “Client-specified request ID from OpenMiningChannel message” / 05-Mining-Protocol.md:228: “Server MUST accept the target or respond by sending OpenMiningChannel.Error message.”"#,
    ),
    (
        "mining.extranonce-size",
        r#"05-Mining-Protocol.md:249: “Minimum size of extranonce needed by the device/node.” / 05-Mining-Protocol.md:260: “Extranonce size (in bytes) set for the channel” / 05-Mining-Protocol.md:344: “The size of the provided extranonce MUST be equal to the negotiated extranonce size from channel opening.” / 03-Protocol-Overview.md:73: “Allowed range of length is 0 to 32.”"#,
    ),
    (
        "mining.standard-first-job",
        r#"05-Mining-Protocol.md:386: “This MUST be the first message after the channel has been successfully opened. This first message will have min_ntime unset (future job).” / 05-Mining-Protocol.md:460: “Prevhash is distributed whenever a new block is detected in the network by an upstream node or when a new downstream opens a channel.”"#,
    ),
    (
        "mining.standard-jobs-flag",
        r#"05-Mining-Protocol.md:197: “The downstream node requires standard jobs, and is unable to process extended jobs.” / 05-Mining-Protocol.md:558: “This message can be sent only to connections that don’t have `REQUIRES_STANDARD_JOBS` flag in `SetupConnection`.” / 05-Mining-Protocol.md:412: “A proxy MUST translate the message into `NewMiningJob` for all downstream standard channels belonging to the group in case the `SetupConnection` message had the `REQUIRES_STANDARD_JOB` flag set”"#,
    ),
    (
        "mining.version-rolling-flag",
        r#"05-Mining-Protocol.md:201: “server MUST NOT send jobs which do not allow version rolling” / 05-Mining-Protocol.md:207: “REQUIRES_VERSION_ROLLING was set in the SetupConnection::flags field, this bit” / 05-Mining-Protocol.md:208: “MUST NOT be set.”"#,
    ),
    (
        "mining.update-channel-target",
        r#"05-Mining-Protocol.md:283: “When `maximum_target` is smaller than currently used maximum target for the channel, upstream node MUST reflect the client’s request (and send appropriate `SetTarget` message).” / 05-Mining-Protocol.md:287: “Sent only when `UpdateChannel` message is invalid.”"#,
    ),
    (
        "mining.update-channel-unknown",
        r#"05-Mining-Protocol.md:287: “Sent only when `UpdateChannel` message is invalid. When it is accepted by the server, no response is sent back.”"#,
    ),
    (
        "mining.close-channel",
        r#"05-Mining-Protocol.md:297: “The server MUST stop sending messages for the channel.”"#,
    ),
    (
        "mining.close-group",
        r#"05-Mining-Protocol.md:310: “If `channel_id` is addressing a group channel, all channels belonging to such group MUST be closed.” / 05-Mining-Protocol.md:297: “The server MUST stop sending messages for the channel.”"#,
    ),
    (
        "mining.custom-job-unrequested",
        r#"05-Mining-Protocol.md:482: “`SetupConnection.flags` MUST contain `REQUIRES_WORK_SELECTION` flag (work selection feature successfully declared).” / 05-Mining-Protocol.md:198: “If set to 1, the client notifies the server that it will send SetCustomMiningJob on” / 05-Mining-Protocol.md:508: “In case the Pool does not commit (either by timeout, or responding with `SetCustomMiningJob.Error`), the miner SHOULD fall back to a different Pool (or solo).”"#,
    ),
    (
        "mining.custom-job-standard",
        r#"05-Mining-Protocol.md:480: “Can be sent only on extended or group channel. If the group channel contains standard channels, the server MUST ignore those.”"#,
    ),
    (
        "shares.valid-accepted",
        r#"05-Mining-Protocol.md:348: “Response to `SubmitShares` or `SubmitSharesExtended`, accepting results from the miner.” / 05-Mining-Protocol.md:543: “Maximum value of produced hash that will be accepted by a server to accept shares” / 05-Mining-Protocol.md:141: “Upstream stratum nodes accept work submissions and specify a mining target on a per-channel basis.”"#,
    ),
    (
        "shares.accepted-count",
        r#"05-Mining-Protocol.md:366: “their respective counters MUST be reset when a new batch starts being processed.” / 05-Mining-Protocol.md:355: “Count of new submits acknowledged within this batch”"#,
    ),
    (
        "shares.ntime-too-early",
        r#"05-Mining-Protocol.md:333: “This MUST be greater than or equal to the header_timestamp field in the latest SetNewPrevHash message and lower than or equal to that value plus the number of seconds since the receipt of that message.” / 05-Mining-Protocol.md:370: “An error is immediately submitted for every incorrect submit attempt.”"#,
    ),
    (
        "shares.ntime-too-late",
        r#"05-Mining-Protocol.md:333: “lower than or equal to that value plus the number of seconds since the receipt of that message.” / 05-Mining-Protocol.md:370: “An error is immediately submitted for every incorrect submit attempt.” / 05-Mining-Protocol.md:49: “as long as the Job remains valid within the limits defined by the `MAX_FUTURE_BLOCK_TIME` constant of the Bitcoin protocol (2 hours).”"#,
    ),
    (
        "shares.extranonce-short",
        r#"05-Mining-Protocol.md:344: “The size of the provided extranonce MUST be equal to the negotiated extranonce size from channel opening.” / 05-Mining-Protocol.md:370: “An error is immediately submitted for every incorrect submit attempt.”"#,
    ),
    (
        "shares.extranonce-33",
        r#"03-Protocol-Overview.md:73: “Allowed range of length is 0 to 32.” / 05-Mining-Protocol.md:344: “The size of the provided extranonce MUST be equal to the negotiated extranonce size from channel opening.”"#,
    ),
    (
        "shares.unknown-job",
        r#"05-Mining-Protocol.md:370: “An error is immediately submitted for every incorrect submit attempt.” / 05-Mining-Protocol.md:377: “Submission sequence number for which this error is returned” / 05-Mining-Protocol.md:331: “Identifier of the job as provided by NewMiningJob or NewExtendedMiningJob message”"#,
    ),
    (
        "shares.unknown-channel",
        r#"05-Mining-Protocol.md:370: “An error is immediately submitted for every incorrect submit attempt.” / 05-Mining-Protocol.md:146: “Each Channel is identified by its `channel_id` (`U32`), which is consistent throughout the whole life of the Connection.”"#,
    ),
    (
        "shares.above-target",
        r#"05-Mining-Protocol.md:535: “All submits leading to hashes higher than the specified target will be rejected by the server.”"#,
    ),
    (
        "shares.old-target",
        r#"05-Mining-Protocol.md:535: “All submits leading to hashes higher than the specified target will be rejected by the server.” / 05-Mining-Protocol.md:537: “Maximum target is valid until the next `SetTarget` message is sent and is applicable for all jobs received on the channel in the future or already received with an empty `min_ntime`.” / 05-Mining-Protocol.md:538: “The message is not applicable for already received jobs with `min_ntime=nTime`, as their maximum target remains stable.”"#,
    ),
    (
        "shares.duplicate",
        r#"no spec sentence calls a resubmitted share incorrect: SHOULD (duplicate-share is a code of earlier spec versions and of the reference implementation)"#,
    ),
    (
        "shares.version-mask",
        r#"05-Mining-Protocol.md:422: “If set to True, the general purpose bits of version (as specified in BIP323) can be freely manipulated by the downstream node.” / 05-Mining-Protocol.md:397: “The general purpose bits (as specified in BIP323) can be freely manipulated by the downstream node.”"#,
    ),
    (
        "shares.version-fixed",
        r#"05-Mining-Protocol.md:422: “If set to False, the downstream node MUST use version as it is defined by this message.” / 05-Mining-Protocol.md:206: “Upstream node will not accept any changes to the version field.” / 05-Mining-Protocol.md:370: “An error is immediately submitted for every incorrect submit attempt.”"#,
    ),
    (
        "monitor.strict-decoding",
        r#"03-Protocol-Overview.md:73: “Allowed range of length is 0 to 32.” / 03-Protocol-Overview.md:81: “Identical representation to SEQ0_255 but enforces the maximum size of 1” / 03-Protocol-Overview.md:163: “Extensions MUST require negotiation with the recipient of the message to check that the extension is supported before sending non-version-negotiation messages for it.”"#,
    ),
    (
        "monitor.channel-msg-bit",
        r#"03-Protocol-Overview.md:107: “If the `channel_msg` bit is set, the first four bytes of the payload field is a `U32` representing the `channel_id` this message is destined for” / 03-Protocol-Overview.md:103: “The least significant bit of `extension_type` (i.e., bit 15, 0-indexed, also known as `channel_msg`)”"#,
    ),
    (
        "monitor.channel-id-known",
        r#"03-Protocol-Overview.md:107: “If the `channel_msg` bit is set, the first four bytes of the payload field is a `U32` representing the `channel_id` this message is destined for” / 05-Mining-Protocol.md:146: “Each Channel is identified by its `channel_id` (`U32`), which is consistent throughout the whole life of the Connection.”"#,
    ),
    (
        "monitor.setup-answer-first",
        r#"03-Protocol-Overview.md:236: “Server MUST respond with either a `SetupConnection.Success` or `SetupConnection.Error` message.”"#,
    ),
    (
        "monitor.used-version",
        r#"03-Protocol-Overview.md:262: “Selected version proposed by the connecting node that the upstream node supports.”"#,
    ),
    (
        "monitor.printable-codes",
        r#"03-Protocol-Overview.md:224: “Furthermore, error codes MUST NOT include control characters.” / 03-Protocol-Overview.md:226: “These character restrictions apply equally to other human-readable string codes, such as the `reason_code` field of `CloseChannel` (see Section 5.3.9).” / 05-Mining-Protocol.md:305: “it MUST NOT include control characters and SHOULD use printable ASCII where possible.”"#,
    ),
    (
        "monitor.request-id-echo",
        r#"05-Mining-Protocol.md:232: “Sent as a response for opening a standard channel, if successful.” / 05-Mining-Protocol.md:253: “Sent as a response for opening an extended channel.” / 05-Mining-Protocol.md:236: “Client-specified request ID from OpenStandardMiningChannel message, so that the client can pair responses with open channel requests”"#,
    ),
    (
        "monitor.target-within-max",
        r#"05-Mining-Protocol.md:228: “Server MUST accept the target or respond by sending OpenMiningChannel.Error message.” / 05-Mining-Protocol.md:283: “upstream node MUST reflect the client’s request (and send appropriate `SetTarget` message).”"#,
    ),
    (
        "monitor.extranonce-size",
        r#"05-Mining-Protocol.md:249: “Minimum size of extranonce needed by the device/node.” / 05-Mining-Protocol.md:344: “The size of the provided extranonce MUST be equal to the negotiated extranonce size from channel opening.”"#,
    ),
    (
        "monitor.unique-channel-ids",
        r#"05-Mining-Protocol.md:146: “There MUST NOT be two Channels with the same ID in the same Connection.” / 05-Mining-Protocol.md:556: “The server MUST ensure that a group channel has a unique channel ID within one connection.”"#,
    ),
    (
        "monitor.first-job-future",
        r#"05-Mining-Protocol.md:386: “This MUST be the first message after the channel has been successfully opened. This first message will have min_ntime unset (future job).”"#,
    ),
    (
        "monitor.prev-hash-names-future-job",
        r#"05-Mining-Protocol.md:466: “The server MUST NOT send this message referencing a `job_id` that was not previously sent as a future job (i.e. with `min_ntime` unset) on the corresponding channel.”"#,
    ),
    (
        "monitor.job-id-unique",
        r#"05-Mining-Protocol.md:414: “The server MUST NOT assign a `job_id` that is already in use by another currently valid job on the same channel.” / 05-Mining-Protocol.md:390: “The server MUST NOT assign a `job_id` that is already in use by another currently valid job on the same channel.”"#,
    ),
    (
        "monitor.job-kind",
        r#"05-Mining-Protocol.md:47: “which can ONLY be sent via [Standard Channels](#521-standard-channels).” / 05-Mining-Protocol.md:394: “Channel identifier, this must be a standard channel” / 05-Mining-Protocol.md:402: “(Extended and group channels only)”"#,
    ),
    (
        "monitor.standard-jobs-flag",
        r#"05-Mining-Protocol.md:197: “The downstream node requires standard jobs, and is unable to process extended jobs.” / 05-Mining-Protocol.md:558: “This message can be sent only to connections that don’t have `REQUIRES_STANDARD_JOBS` flag in `SetupConnection`.”"#,
    ),
    (
        "monitor.version-rolling-flag",
        r#"05-Mining-Protocol.md:201: “server MUST NOT send jobs which do not allow version rolling” / 05-Mining-Protocol.md:208: “MUST NOT be set.”"#,
    ),
    (
        "monitor.fixed-version",
        r#"05-Mining-Protocol.md:208: “Further, if this bit is set, extended jobs MUST NOT indicate” / 05-Mining-Protocol.md:209: “support for version rolling.”"#,
    ),
    (
        "monitor.coinbase-stripped",
        r#"05-Mining-Protocol.md:432: “If the original coinbase is a SegWit transaction, `coinbase_tx_prefix` and `coinbase_tx_suffix` MUST be stripped of BIP141 fields” / 03-Protocol-Overview.md:335: “In case the Template's Coinbase is a SegWit transaction, BIP141 fields MUST be stripped away from `coinbase_tx_prefix` and `coinbase_tx_suffix`”"#,
    ),
    (
        "monitor.group-extranonce-length",
        r#"05-Mining-Protocol.md:187: “All channels under the same Group Channel (Extended and Standard) MUST have the exact same size for the full Extended Extranonce” / 05-Mining-Protocol.md:565: “All channels under the same Group Channel (Extended and Standard) MUST have the exact same size for the full Extended Extranonce”"#,
    ),
    (
        "monitor.silent-after-close",
        r#"05-Mining-Protocol.md:297: “The server MUST stop sending messages for the channel.”"#,
    ),
    (
        "monitor.no-prefix-to-group",
        r#"05-Mining-Protocol.md:316: “This message is applicable only for explicitly opened extended channels or standard channels (not group channels).”"#,
    ),
    (
        "monitor.share-acks",
        r#"05-Mining-Protocol.md:354: “Most recent sequence number with a correct result” / 05-Mining-Protocol.md:366: “their respective counters MUST be reset when a new batch starts being processed.”"#,
    ),
    (
        "monitor.share-error-echo",
        r#"05-Mining-Protocol.md:377: “Submission sequence number for which this error is returned” / 05-Mining-Protocol.md:370: “An error is immediately submitted for every incorrect submit attempt.”"#,
    ),
    (
        "monitor.traffic",
        r#"no spec sentence: ordinary traffic for the monitor's rules to judge, not a requirement (MAY)"#,
    ),
    (
        "monitor.extranonce-fits",
        r#"05-Mining-Protocol.md:344: “The size of the provided extranonce MUST be equal to the negotiated extranonce size from channel opening.” (SubmitSharesExtended.extranonce is a B0_32: at most 32 bytes, 03-Protocol-Overview.md:73)"#,
    ),
    (
        "monitor.job-after-prev-hash",
        r#"05-Mining-Protocol.md:396: “If the min_ntime value is set, this mining job is active and miner must start mining on it immediately. In this case, the new mining job uses the prev_hash from the last received SetNewPrevHash message.” (a job sent active before any SetNewPrevHash has no prev_hash to use: expected, not a keyword)"#,
    ),
    (
        "monitor.job-min-ntime",
        r#"05-Mining-Protocol.md:396: “Smallest nTime value available for hashing for the new mining job.” / 05-Mining-Protocol.md:333: “This MUST be greater than or equal to the header_timestamp field in the latest SetNewPrevHash message” (a job whose min_ntime lies below the prev hash's leaves no nTime both allow: expected, not a keyword on the server)"#,
    ),
    (
        "monitor.coinbase-is-coinbase",
        r#"05-Mining-Protocol.md:344: “full coinbase = coinbase_tx_prefix + extranonce_prefix + extranonce + coinbase_tx_suffix” (that it is a coinbase, one input with a null prevout, follows from Bitcoin's rules, not from an SV2 keyword)"#,
    ),
    (
        "monitor.share-error-after-ack",
        r#"05-Mining-Protocol.md:355: “Count of new submits acknowledged within this batch” (a share a SubmitShares.Success counted is acknowledged; refusing it afterwards contradicts the count: expected, not a keyword)"#,
    ),
    (
        "monitor.client-strict-decoding",
        r#"03-Protocol-Overview.md:73: “Allowed range of length is 0 to 32.” / 03-Protocol-Overview.md:81: “Identical representation to SEQ0_255 but enforces the maximum size of 1”"#,
    ),
    (
        "monitor.client-channel-msg-bit",
        r#"03-Protocol-Overview.md:107: “If the `channel_msg` bit is set, the first four bytes of the payload field is a `U32` representing the `channel_id` this message is destined for” / 03-Protocol-Overview.md:103: “The least significant bit of `extension_type` (i.e., bit 15, 0-indexed, also known as `channel_msg`)”"#,
    ),
    (
        "monitor.client-setup-first",
        r#"03-Protocol-Overview.md:235: “This MUST be the first message sent by the client on the newly opened connection.”"#,
    ),
    (
        "monitor.client-vendor",
        r#"03-Protocol-Overview.md:238: “However, they MUST always set vendor to a string describing the manufacturer/developer and firmware version”"#,
    ),
    (
        "monitor.client-request-id-unique",
        r#"05-Mining-Protocol.md:225: “Client-specified identifier for matching responses from upstream server. The value MUST be connection-wide unique and is not interpreted by the server.”"#,
    ),
    (
        "monitor.client-share-ntime",
        r#"05-Mining-Protocol.md:333: “The nTime field in the block header. This MUST be greater than or equal to the header_timestamp field in the latest SetNewPrevHash message and lower than or equal to that value plus the number of seconds since the receipt of that message.”"#,
    ),
    (
        "monitor.client-sequence-unique",
        r#"05-Mining-Protocol.md:330: “Unique sequential identifier of the submit within the channel”"#,
    ),
    (
        "device.noise.wrong-authority",
        r#"04-Protocol-Security.md:292: “These parts make up a `CERTIFICATE` signed by an authority whose public key is generally known (for example from pool's website). Initiator confirms the identity of the server by verifying the signature in the certificate.” / 03-Protocol-Overview.md:301: “This ensures that an attacker will not be able to redirect hashrate to an arbitrary server should the pool server get compromised”"#,
    ),
    (
        "device.noise.expired",
        r#"04-Protocol-Security.md:242: “Signature is invalid after this point in time (unix timestamp)” / 04-Protocol-Security.md:292: “Initiator confirms the identity of the server by verifying the signature in the certificate.”"#,
    ),
    (
        "device.noise.not-yet-valid",
        r#"04-Protocol-Security.md:241: “Validity start time (unix timestamp)” / 04-Protocol-Security.md:292: “Initiator confirms the identity of the server by verifying the signature in the certificate.”"#,
    ),
    (
        "device.noise.act2-mac",
        r#"04-Protocol-Security.md:191: “Should the decryption (i.e. authentication code validation) fail at any point, the session must be terminated.” / 04-Protocol-Security.md:281: “decrypts next 80 bytes with `DecryptAndHash()` and stores the results as `rs.public_key` which is **server's static public key** (note that 64 bytes is the public key and 16 bytes is MAC)”"#,
    ),
    (
        "device.noise.frame-mac",
        r#"04-Protocol-Security.md:191: “Should the decryption (i.e. authentication code validation) fail at any point, the session must be terminated.” / 04-Protocol-Security.md:347: “If decryption fails, the process stops”"#,
    ),
    (
        "device.setup.versions",
        r#"03-Protocol-Overview.md:243: “The minimum protocol version the client supports (currently must be 2)” / 03-Protocol-Overview.md:244: “The maximum protocol version the client supports (currently must be 2)”"#,
    ),
    (
        "device.mining.waits-for-work",
        r#"05-Mining-Protocol.md:396: “An empty value indicates this is a future job to be activated once a SetNewPrevHash message is received with a matching job_id.” / 05-Mining-Protocol.md:464: “When a client receives this message, only the job referenced by Job ID is valid.” (no sentence forbids a share without a job in words: SHOULD)"#,
    ),
    (
        "device.shares.accepted",
        r#"05-Mining-Protocol.md:535: “All submits leading to hashes higher than the specified target will be rejected by the server.” / 05-Mining-Protocol.md:464: “When a client receives this message, only the job referenced by Job ID is valid.” (what the server rejects, not a MUST on the client: SHOULD)"#,
    ),
    (
        "device.shares.extranonce-size",
        r#"05-Mining-Protocol.md:344: “The size of the provided extranonce MUST be equal to the negotiated extranonce size from channel opening.”"#,
    ),
    (
        "device.shares.version-not-rolled",
        r#"05-Mining-Protocol.md:422: “If set to False, the downstream node MUST use version as it is defined by this message.” / 05-Mining-Protocol.md:206: “Upstream node will not accept any changes to the version field.”"#,
    ),
    (
        "device.shares.set-target",
        r#"05-Mining-Protocol.md:535: “All submits leading to hashes higher than the specified target will be rejected by the server.” / 05-Mining-Protocol.md:537: “Maximum target is valid until the next `SetTarget` message is sent and is applicable for all jobs received on the channel in the future or already received with an empty `min_ntime`.” (what the server rejects, not a MUST on the client: SHOULD)"#,
    ),
    (
        "device.shares.new-prev-hash",
        r#"05-Mining-Protocol.md:463: “Clients MUST immediately start to mine on the provided prevhash.” / 05-Mining-Protocol.md:464: “When a client receives this message, only the job referenced by Job ID is valid.” / 05-Mining-Protocol.md:465: “The remaining jobs already queued by the client have to be made invalid.”"#,
    ),
    (
        "device.shares.new-job",
        r#"05-Mining-Protocol.md:388: “If the `min_ntime` field is set, the client MUST start to mine on the new job immediately after receiving this message, and use the value for the initial nTime.” / 05-Mining-Protocol.md:406: “If the `min_ntime` field is set to some nTime, the client MUST start to mine on the new job as soon as possible after receiving this message.”"#,
    ),
    (
        "device.robust.unknown-extension",
        r#"03-Protocol-Overview.md:157: “Messages with an unknown `extension_type` which are to be processed locally (as defined above) MUST be discarded and ignored.”"#,
    ),
    (
        "device.robust.chunked-frame",
        r#"04-Protocol-Security.md:384: “Serialized stratum-v2 body (payload) is split into 65519-byte chunks and encrypted to form 65535-bytes AEAD ciphertexts,” / 03-Protocol-Overview.md:157: “Messages with an unknown `extension_type` which are to be processed locally (as defined above) MUST be discarded and ignored.”"#,
    ),
    (
        "device.robust.option-prefix",
        r#"03-Protocol-Overview.md:81: “Alias for SEQ0_1[T]. Identical representation to SEQ0_255 but enforces the maximum size of 1” (no requirement keyword: SHOULD)"#,
    ),
    (
        "device.robust.bool-high-bits",
        r#"03-Protocol-Overview.md:65: “Recipients MUST NOT interpret bits outside of the least significant bit. Senders MAY set bits outside of the least significant bit to any value without any impact on meaning.” / 05-Mining-Protocol.md:422: “If set to False, the downstream node MUST use version as it is defined by this message.”"#,
    ),
    (
        "device.robust.share-error-code",
        r#"03-Protocol-Overview.md:218: “implementations MUST do a logging no-op for unknown error codes.” / 03-Protocol-Overview.md:220: “Fallback or recovery behavior MUST be based on the overall protocol state, even when a peer sends an unknown, different, or unexpected error code.”"#,
    ),
    (
        "device.robust.open-error-code",
        r#"03-Protocol-Overview.md:218: “implementations MUST do a logging no-op for unknown error codes.” / 03-Protocol-Overview.md:220: “Fallback or recovery behavior MUST be based on the overall protocol state, even when a peer sends an unknown, different, or unexpected error code.”"#,
    ),
    (
        "device.mining.close-channel",
        r#"05-Mining-Protocol.md:294: “`CloseChannel` (Client -> Server, Server -> Client)” / 05-Mining-Protocol.md:297: “The server MUST stop sending messages for the channel.” (nothing binds the client once the server closes: SHOULD)"#,
    ),
    (
        "device.reconnect.follows",
        r#"03-Protocol-Overview.md:116: “After receiving a request to reconnect, the downstream node MUST run the handshake protocol with the new node as long as its previous connection was also running through a secure cryptographic session state.” / 03-Protocol-Overview.md:297: “Upon receiving the message, the client re-initiates the Noise handshake”"#,
    ),
    (
        "device.reconnect.wrong-authority",
        r#"03-Protocol-Overview.md:297: “Upon receiving the message, the client re-initiates the Noise handshake and uses the pool’s authority public key to verify that the certificate presented by the new server has a valid signature.” / 03-Protocol-Overview.md:299: “For security reasons, it is not possible to reconnect to a server with a certificate signed by a different pool authority key.”"#,
    ),
    (
        "translator.mining.idle-hashrate",
        r#"05-Mining-Protocol.md:227: “Proxy MUST send 0.0f when there are no mining devices connected yet.”"#,
    ),
    (
        "translator.mining.miner-joins",
        r#"05-Mining-Protocol.md:274: “If a client performs device/connection aggregation (i.e. it is a proxy), it MUST send this message when downstream channels change.”"#,
    ),
    (
        "translator.mining.miner-leaves",
        r#"05-Mining-Protocol.md:298: “A proxy MUST send this message on behalf of all opened channels from a downstream connection in case of downstream connection closure.” / 05-Mining-Protocol.md:307: “If a proxy is operating in channel aggregating mode (translating downstream channels into aggregated extended upstream channels), it MUST send an `UpdateChannel` message when it receives `CloseChannel` or connection closure from a downstream connection.”"#,
    ),
    (
        "translator.sv1.extranonce",
        r#"05-Mining-Protocol.md:344: “Extranonce bytes which need to be added to coinbase to form a fully valid submission (full coinbase = coinbase_tx_prefix + extranonce_prefix + extranonce + coinbase_tx_suffix). The size of the provided extranonce MUST be equal to the negotiated extranonce size from channel opening.” (what the translator gives its SV1 miners is not in the spec: SHOULD)"#,
    ),
    (
        "translator.sv1.clean-jobs",
        r#"05-Mining-Protocol.md:463: “Clients MUST immediately start to mine on the provided prevhash.” / 05-Mining-Protocol.md:464: “When a client receives this message, only the job referenced by Job ID is valid.”"#,
    ),
    (
        "translator.shares.forwarded",
        r#"no spec sentence: the spec does not describe translation to SV1; a translator that drops its miners' valid shares loses their work (SHOULD). The nearest text, 05-Mining-Protocol.md:535: “All submits leading to hashes higher than the specified target will be rejected by the server.”"#,
    ),
    (
        "device.noise.act2-length",
        r#"04-Protocol-Security.md:278: “interprets first 64 bytes as EllSwift encoded `re.public_key`” / 04-Protocol-Security.md:281: “decrypts next 80 bytes with `DecryptAndHash()`” / 04-Protocol-Security.md:283: “decrypts next 90 bytes with `DecryptAndHash()` and deserialize plaintext into `SIGNATURE_NOISE_MESSAGE` (74 bytes data + 16 bytes MAC)” (234 bytes in all; 04-Protocol-Security.md:273 still says “Message length: 170 bytes”, the layout of 32-byte keys: CATALOG erratum. Steps without a keyword: SHOULD, though a client reading 170 bytes as a whole act 2 cannot complete a handshake with a conforming server)"#,
    ),
    (
        "device.setup.error",
        r#"03-Protocol-Overview.md:267: “When protocol version negotiation fails (or there is another reason why the upstream node cannot setup the connection) the server sends this message with a particular error code prior to closing the connection.” (the connection is not set up, so a channel request on it has no place; no keyword: SHOULD)"#,
    ),
    (
        "device.shares.extranonce-prefix",
        r#"05-Mining-Protocol.md:314: “Changes downstream node’s extranonce prefix.” / 05-Mining-Protocol.md:315: “It is applicable for all jobs sent after this message on a given channel (both jobs provided by the upstream or jobs introduced by `SetCustomMiningJob` message).” (no keyword: SHOULD, though a share built on the old prefix is invalid work)"#,
    ),
    (
        "device.robust.unknown-message",
        r#"no spec sentence: the spec says what to do with a message of an unknown extension (03-Protocol-Overview.md:157: “Messages with an unknown `extension_type` which are to be processed locally (as defined above) MUST be discarded and ignored.”), not with an undefined message type of the core protocols; surviving one is a robustness expectation (SHOULD)"#,
    ),
    (
        "proxy.extranonce.unique",
        r#"05-Mining-Protocol.md:28: “Mining servers MUST assign a unique subset of the search space to each mining device, otherwise the mining devices will waste energy with overlapping search.” / 05-Mining-Protocol.md:79: “The **locally reserved** bytes is where the local layer will assign unique values for its own downstream clients, according to their hashpower.”"#,
    ),
    (
        "proxy.jobs.standard",
        r#"05-Mining-Protocol.md:100: “For conversion into Standard Jobs, the Coinbase Transaction is constructed by concatenating these fields in this specific order: `coinbase_tx_prefix + extranonce_prefix + coinbase_tx_suffix`.” / 05-Mining-Protocol.md:164: “The Merkle Root of each Standard Job is calculated by the Proxy, taking in consideration the `extranonce_prefix` that was assigned to each Standard Channel, plus the `coinbase_tx_prefix` and the `coinbase_tx_suffix` that were sent on the Extended Job.” (a definition without a keyword: SHOULD, though any other root is not the extended job's work and every share on it is invalid; CATALOG §F 73 reads it as a MUST)"#,
    ),
    (
        "proxy.reconnect.not-propagated",
        r#"03-Protocol-Overview.md:296: “This message is connection-related so that it should not be propagated downstream by intermediate proxies.” (“should not” in lower case: SHOULD)"#,
    ),
];

/// Checks that rest on another check's sentences: the same rule for another role.
const SAME_AS: &[(&str, &str)] = &[
    (
        "proxy.mining.idle-hashrate",
        "translator.mining.idle-hashrate",
    ),
    ("proxy.mining.device-joins", "translator.mining.miner-joins"),
    (
        "proxy.mining.device-leaves",
        "translator.mining.miner-leaves",
    ),
];

/// The spec sentence(s) a check or rule rests on.
pub fn quote(id: &str) -> Option<&'static str> {
    let id = SAME_AS
        .iter()
        .find(|(i, _)| *i == id)
        .map_or(id, |(_, same)| *same);
    QUOTES.iter().find(|(i, _)| *i == id).map(|(_, q)| *q)
}
