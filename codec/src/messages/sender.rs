//! Which side of a connection sends each message, as the spec's message tables say: the client is
//! who opened the connection (a mining device, a proxy's upstream side, a pool or JDC towards its
//! template provider, a JDC towards its job declarator), the server who accepted it.

use super::{Message, MessageInfo};

/// Who sends a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    Client,
    Server,
    /// Either side (CloseChannel).
    Either,
}

impl MessageInfo {
    /// The side that sends this message type.
    pub fn sender(&self) -> Sender {
        match self.name {
            "SetupConnection"
            | "RequestExtensions"
            | "OpenStandardMiningChannel"
            | "OpenExtendedMiningChannel"
            | "UpdateChannel"
            | "SubmitSharesStandard"
            | "SubmitSharesExtended"
            | "SetCustomMiningJob"
            | "AllocateMiningJobToken"
            | "ProvideMissingTransactions.Success"
            | "DeclareMiningJob"
            | "PushSolution"
            | "CoinbaseOutputConstraints"
            | "RequestTransactionData"
            | "SubmitSolution" => Sender::Client,
            "CloseChannel" => Sender::Either,
            // Every other message: answers, jobs, targets, templates, Reconnect, and the job
            // declarator's ProvideMissingTransactions request.
            _ => Sender::Server,
        }
    }
}

impl Message<'_> {
    /// The side that sends this message; `None` for a frame of an unknown extension.
    pub fn sender(&self) -> Option<Sender> {
        self.info().map(MessageInfo::sender)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::MESSAGE_TYPES;

    /// Every answer (.Success, .Error) comes from the side that did not send its request, and the
    /// client's requests are known by name: the table checked against every message type.
    #[test]
    fn answers_come_from_the_other_side_of_their_requests() {
        let by_name = |name: &str| {
            MESSAGE_TYPES
                .iter()
                .find(|i| i.name == name)
                .map(MessageInfo::sender)
        };
        let mut answers = 0;
        for info in MESSAGE_TYPES {
            let Some((request, _)) = info.name.rsplit_once('.') else {
                continue;
            };
            answers += 1;
            // OpenMiningChannel.Error and SubmitShares.* answer a family of requests.
            let request = match request {
                "OpenMiningChannel" => "OpenStandardMiningChannel",
                "SubmitShares" => "SubmitSharesStandard",
                other => other,
            };
            let asked_by = by_name(request).unwrap_or_else(|| panic!("no request {request}"));
            let answered_by = info.sender();
            assert_ne!(asked_by, Sender::Either, "{}", info.name);
            assert_ne!(asked_by, answered_by, "{}", info.name);
        }
        assert!(answers >= 15, "{answers}");
        let clients = MESSAGE_TYPES
            .iter()
            .filter(|i| i.sender() == Sender::Client)
            .count();
        assert_eq!(clients, 15);
    }
}
