//! Webhooks: signing and verification, and the at-least-once sender that both the carrier
//! (tracking events to the service) and the service (outbox events to merchants) use.

mod sender;
mod signature;

pub use sender::{
    DeliveryQueue, DeliveryResult, Outgoing, SecretRotation, SenderConfig, run_sender,
};
pub(crate) use signature::SigningKeys;
pub use signature::{
    HEADER_SIGNATURE, SignatureError, SigningKey, TOLERANCE_S_DEFAULT, sign, sign_rotating, verify,
};
