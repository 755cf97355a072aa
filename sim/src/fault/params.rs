//! Reading one `[[fault]]` table: typed access to its parameters, with errors that point at
//! the value, and a final check that no parameter of another kind was given.

use std::collections::BTreeSet;
use std::ops::Range;

use toml::Spanned;

use super::ParamInfo;
use crate::run::hosts::HostSel;
use crate::scenario::ScenarioError;
use crate::scenario::limits;
use crate::scenario::raw::RawFault;

/// The parameters of one fault table, as they are read.
pub(crate) struct Params<'a> {
    raw: &'a RawFault,
    kind_name: &'static str,
    known: &'static [ParamInfo],
    file: &'a str,
    source: &'a str,
    clients: u32,
    hosts: &'a [String],
    webhooks: Option<crate::scenario::WebhookSettings>,
    used: BTreeSet<&'static str>,
    table_span: Range<usize>,
}

/// A value with the span it came from.
pub(crate) type At<T> = (T, Range<usize>);

macro_rules! getter {
    ($method:ident, $ty:ty, [$($field:ident),*]) => {
        /// Reads a parameter of this type by name, marking it used.
        pub(crate) fn $method(&mut self, name: &'static str) -> Option<At<$ty>> {
            let value: Option<&Spanned<$ty>> = match name {
                $(stringify!($field) => self.raw.$field.as_ref(),)*
                other => unreachable!("no {} parameter `{other}`", stringify!($ty)),
            };
            self.used.insert(name);
            value.map(|v| (v.get_ref().clone(), v.span()))
        }
    };
}

impl<'a> Params<'a> {
    pub(crate) fn new(
        raw: &'a Spanned<RawFault>,
        kind_name: &'static str,
        known: &'static [ParamInfo],
        context: &super::ParseContext<'a>,
    ) -> Self {
        let mut used = BTreeSet::new();
        used.insert("kind");
        Params {
            raw: raw.get_ref(),
            kind_name,
            known,
            file: context.file,
            source: context.source,
            clients: context.clients,
            hosts: context.hosts,
            webhooks: context.webhooks,
            used,
            table_span: raw.span(),
        }
    }

    /// The scenario's webhook settings, for kinds that need webhook traffic.
    pub(crate) fn webhooks(&self) -> Option<crate::scenario::WebhookSettings> {
        self.webhooks
    }

    /// An error about the whole table.
    pub(crate) fn whole(&self, message: impl Into<String>) -> ScenarioError {
        self.error(self.table_span.clone(), message)
    }

    getter!(
        u64,
        u64,
        [
            stream,
            after_ms,
            start_ms,
            end_ms,
            duration_ms,
            retry_after_s,
            delay_ms,
            min_ms,
            max_ms,
            period_ms,
            restart_after_ms
        ]
    );
    getter!(u32, u32, [copies, times, events]);
    getter!(u16, u16, [status]);
    getter!(i64, i64, [offset_ms, drift_ppm]);
    getter!(f64, f64, [probability]);
    getter!(
        text,
        String,
        [
            target,
            from,
            to,
            when,
            retry_after_form,
            point,
            path_prefix,
            direction
        ]
    );
    getter!(pair, [String; 2], [between]);

    /// An error at `span`.
    pub(crate) fn error(&self, span: Range<usize>, message: impl Into<String>) -> ScenarioError {
        ScenarioError::at(self.file, self.source, span, message)
    }

    /// An error about the whole table (a required parameter missing).
    pub(crate) fn missing(&self, name: &str) -> ScenarioError {
        let info = self
            .known
            .iter()
            .chain(super::WINDOW_PARAMS)
            .find(|p| p.name == name);
        let hint = match info {
            Some(ParamInfo {
                doc,
                limit: Some(limit),
                ..
            }) => format!("`{name}`: {doc}; takes {limit}"),
            Some(info) => format!("`{name}`: {}", info.doc),
            None => format!("`{name}`"),
        };
        self.error(
            self.table_span.clone(),
            format!("fault kind `{}` needs `{name}`", self.kind_name),
        )
        .with_hint(hint)
    }

    /// A numeric parameter, checked against `info`'s range (the same located error as any
    /// other, with the range in the hint).
    pub(crate) fn ranged<T: limits::Number>(
        &mut self,
        info: &ParamInfo,
        get: impl FnOnce(&mut Self, &'static str) -> Option<At<T>>,
    ) -> Result<Option<At<T>>, ScenarioError> {
        let Some((value, span)) = get(self, info.name) else {
            return Ok(None);
        };
        let limit = info
            .limit
            .expect("a parameter read as a number declares its limit");
        limits::check(
            self.file,
            self.source,
            info.name,
            &limit,
            info.doc,
            value,
            span.clone(),
        )?;
        Ok(Some((value, span)))
    }

    /// A required numeric parameter, checked against `info`'s range.
    pub(crate) fn required_ranged<T: limits::Number>(
        &mut self,
        info: &ParamInfo,
        get: impl FnOnce(&mut Self, &'static str) -> Option<At<T>>,
    ) -> Result<At<T>, ScenarioError> {
        self.ranged(info, get)?
            .ok_or_else(|| self.missing(info.name))
    }

    /// A required parameter.
    pub(crate) fn required<T>(
        &mut self,
        name: &'static str,
        get: impl FnOnce(&mut Self, &'static str) -> Option<At<T>>,
    ) -> Result<At<T>, ScenarioError> {
        get(self, name).ok_or_else(|| self.missing(name))
    }

    /// A host selector parameter (`target`, `from`, `to`).
    pub(crate) fn host(
        &mut self,
        name: &'static str,
    ) -> Result<Option<At<HostSel>>, ScenarioError> {
        let Some((text, span)) = self.text(name) else {
            return Ok(None);
        };
        let selector = self.selector(&text, &span)?;
        Ok(Some((selector, span)))
    }

    /// Parses a selector, checking that it names hosts this scenario has: the clients it
    /// declares, and the `receiver` only when the scenario delivers outbound webhooks.
    fn selector(&self, text: &str, span: &Range<usize>) -> Result<HostSel, ScenarioError> {
        let selector = HostSel::parse(text, self.clients, self.hosts)
            .map_err(|m| self.error(span.clone(), m))?;
        // The reference receiver runs only with outbound webhooks: naming it otherwise
        // would aim a fault at nothing.
        let receiver = HostSel::Host(crate::run::hosts::RECEIVER.to_string());
        if selector == receiver && !self.webhooks.is_some_and(|w| w.outbound) {
            return Err(self
                .error(
                    span.clone(),
                    "host `receiver` does not exist: this scenario delivers no outbound webhooks",
                )
                .with_hint("add `[webhooks]` with `outbound = true` to have a receiver host"));
        }
        Ok(selector)
    }

    /// A host selector that must name a server (`service` or `carrier`).
    pub(crate) fn server(&mut self, name: &'static str) -> Result<HostSel, ScenarioError> {
        let Some((selector, span)) = self.host(name)? else {
            return Err(self.missing(name));
        };
        if !selector.is_server() {
            return Err(self
                .error(
                    span,
                    format!(
                        "`{name}` of fault kind `{}` must be a server",
                        self.kind_name
                    ),
                )
                .with_hint(
                    "use `service` or one of the target's other hosts: clients do not serve HTTP",
                ));
        }
        Ok(selector)
    }

    /// `when = "before" | "after"` (default before): whether the fault acts after the
    /// exchange was handled. `true` for after.
    pub(crate) fn when_after(&mut self) -> Result<bool, ScenarioError> {
        match self.text("when") {
            None => Ok(false),
            Some((when, span)) => match when.as_str() {
                "before" => Ok(false),
                "after" => Ok(true),
                other => Err(self.error(
                    span,
                    format!("`when` is \"before\" or \"after\", not \"{other}\""),
                )),
            },
        }
    }

    /// `between = [a, b]` as two selectors naming different hosts.
    pub(crate) fn between(&mut self) -> Result<(HostSel, HostSel), ScenarioError> {
        let ([a, b], span) = self.required("between", Self::pair)?;
        let a = self.selector(&a, &span)?;
        let b = self.selector(&b, &span)?;
        if a == b
            || (a == HostSel::Clients && matches!(b, HostSel::Client(_)))
            || (b == HostSel::Clients && matches!(a, HostSel::Client(_)))
        {
            return Err(self
                .error(span, "`between` must name two different sides")
                .with_hint("e.g. between = [\"clients\", \"service\"]"));
        }
        Ok((a, b))
    }

    /// Checks that every parameter given was read by the kind: anything else belongs to
    /// another kind, or is a typo.
    pub(crate) fn finish(self) -> Result<(), ScenarioError> {
        for (name, span) in self.present() {
            if !self.used.contains(name) {
                let accepted: Vec<&str> = self.known.iter().map(|p| p.name).collect();
                return Err(self
                    .error(
                        span,
                        format!("`{name}` does not apply to fault kind `{}`", self.kind_name),
                    )
                    .with_hint(format!(
                        "`{}` takes: {}, start_ms, end_ms, duration_ms, stream",
                        self.kind_name,
                        accepted.join(", ")
                    )));
            }
        }
        Ok(())
    }

    fn present(&self) -> Vec<(&'static str, Range<usize>)> {
        let raw = self.raw;
        let mut present = Vec::new();
        macro_rules! check {
            ($($field:ident),*) => {
                $(if let Some(value) = &raw.$field { present.push((stringify!($field), value.span())); })*
            };
        }
        check!(
            target,
            between,
            from,
            to,
            stream,
            direction,
            after_ms,
            events,
            start_ms,
            end_ms,
            duration_ms,
            probability,
            path_prefix,
            status,
            when,
            retry_after_s,
            retry_after_form,
            delay_ms,
            min_ms,
            max_ms,
            copies,
            period_ms,
            point,
            restart_after_ms,
            times,
            offset_ms,
            drift_ppm
        );
        present
    }
}
