//! Stuck detection with the reference's patterns and thresholds, over the
//! last 20 events since the latest user message:
//! the same action and observation 4 times; the same action failing with the
//! same error more than 3 times (a nudge at exactly 3); 3 agent messages in a
//! row with nothing in between; two action/observation pairs alternating over
//! 6 steps.

use serde_json::Value;

use crate::wire::{Event, Role, Source};

const SCAN: usize = 20;

/// What the detector concluded.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Nothing wrong.
    Fine,
    /// Tell the model it is repeating a failing call (`tool`, `error`).
    Nudge(String, String),
    /// Stop the run.
    Stuck(&'static str),
}

/// An event reduced to what equality should look at (no ids, no times).
fn action_key(e: &Event) -> Option<Value> {
    match e {
        Event::Action(a) => Some(serde_json::json!([a.thought, a.action, a.tool_name])),
        _ => None,
    }
}

fn outcome_key(e: &Event) -> Option<Value> {
    match e {
        Event::Observation(o) => Some(serde_json::json!(["obs", o.observation, o.tool_name])),
        Event::AgentError(a) => Some(serde_json::json!(["err", a.error])),
        _ => None,
    }
}

/// Judges the events of a conversation (oldest first).
pub fn check(events: &[Event]) -> Verdict {
    let start = events.len().saturating_sub(SCAN);
    let window = &events[start..];
    let since_user = window
        .iter()
        .rposition(|e| matches!(e, Event::Message(m) if m.meta.source == Source::User))
        .map_or(window, |i| &window[i + 1..]);
    let relevant: Vec<&Event> = since_user
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Action(_) | Event::Observation(_) | Event::AgentError(_) | Event::Message(_)
            )
        })
        .collect();
    if relevant.len() < 3 {
        return Verdict::Fine;
    }
    let actions: Vec<Value> = relevant.iter().filter_map(|e| action_key(e)).collect();
    let outcomes: Vec<Value> = relevant.iter().filter_map(|e| outcome_key(e)).collect();

    // 1. Same action and same observation four times.
    let obs_only: Vec<&Value> = outcomes.iter().filter(|v| v[0] == "obs").collect();
    if actions.len() >= 4 && obs_only.len() >= 4 {
        let a = &actions[actions.len() - 4..];
        let o = &obs_only[obs_only.len() - 4..];
        if a.iter().all(|x| x == &a[0]) && o.iter().all(|x| *x == o[0]) {
            return Verdict::Stuck("the same action got the same observation 4 times");
        }
    }

    // 2. The same action failing with the same error, at the end.
    let mut streak = 0;
    let mut first: Option<(Value, String, String)> = None;
    let mut i = relevant.len();
    while i >= 2 {
        let (Event::Action(a), Event::AgentError(err)) = (relevant[i - 2], relevant[i - 1]) else {
            break;
        };
        let key = action_key(relevant[i - 2]).unwrap_or(Value::Null);
        match &first {
            None => first = Some((key, err.error.clone(), a.tool_name.clone())),
            Some((k, e, _)) if *k == key && *e == err.error => {}
            Some(_) => break,
        }
        streak += 1;
        i -= 2;
    }
    if streak > 3 {
        return Verdict::Stuck("the same action failed with the same error more than 3 times");
    }
    if let (3, Some((_, error, tool))) = (streak, first) {
        return Verdict::Nudge(tool, error);
    }

    // 3. Agent monologue.
    let tail_msgs = relevant
        .iter()
        .rev()
        .take_while(|e| matches!(e, Event::Message(m) if m.meta.source == Source::Agent && m.llm_message.role == Role::Assistant))
        .count();
    if tail_msgs >= 3 {
        return Verdict::Stuck("the agent sent 3 messages in a row without acting");
    }

    // 4. Alternating pattern over 6 steps.
    if actions.len() >= 6 && outcomes.len() >= 6 {
        let a = &actions[actions.len() - 6..];
        let o = &outcomes[outcomes.len() - 6..];
        if (0..4).all(|i| a[i] == a[i + 2] && o[i] == o[i + 2]) {
            return Verdict::Stuck("the agent alternated between two actions 6 times");
        }
    }
    Verdict::Fine
}

/// The message sent to the model with a [`Verdict::Nudge`].
pub fn nudge_text(tool: &str, error: &str) -> String {
    format!(
        "You have called `{tool}` with the same arguments 3 times in a row and got the same error each time: {error}. \
         Calling it the same way again will not work: read the error, then fix the arguments or try another approach."
    )
}
