//! Stuck detection with the reference's patterns and thresholds, over the
//! last 20 events since the latest user message:
//! the same action and observation 4 times; the same action failing with the
//! same error more than 3 times (a nudge at exactly 3); 3 agent messages in a
//! row with nothing in between; two action/observation pairs alternating over
//! 6 steps.

use std::borrow::Borrow;

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

/// Judges the events of a conversation (oldest first; `Event` or `Arc<Event>`).
pub fn check<E: Borrow<Event>>(events: &[E]) -> Verdict {
    let start = events.len().saturating_sub(SCAN);
    let window = &events[start..];
    let since_user = window
        .iter()
        .rposition(|e| matches!(e.borrow(), Event::Message(m) if m.meta.source == Source::User))
        .map_or(window, |i| &window[i + 1..]);
    let relevant: Vec<&Event> = since_user
        .iter()
        .map(Borrow::borrow)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::*;
    use serde_json::Map;

    fn user(text: &str) -> Event {
        Event::Message(MessageEvent {
            meta: EventMeta::new(Source::User),
            llm_message: Message::text(Role::User, text),
            llm_response_id: None,
            activated_skills: vec![],
            extended_content: vec![],
            sender: None,
            extra: Map::new(),
        })
    }

    fn action(cmd: &str) -> Event {
        let call = MessageToolCall {
            id: crate::util::id::uuid4(),
            responses_item_id: None,
            name: "terminal".into(),
            arguments: "{}".into(),
            origin: "completion".into(),
        };
        Event::Action(ActionEvent {
            meta: EventMeta::new(Source::Agent),
            thought: vec![],
            reasoning_content: None,
            thinking_blocks: vec![],
            responses_reasoning_item: None,
            action: Some(Action::Terminal(TerminalAction {
                command: cmd.into(),
                is_input: false,
                timeout: None,
                reset: false,
                extra: Map::new(),
            })),
            tool_name: "terminal".into(),
            tool_call_id: call.id.clone(),
            tool_call: call,
            llm_response_id: crate::util::id::uuid4(),
            security_risk: SecurityRisk::Low,
            summary: None,
            extra: Map::new(),
        })
    }

    fn error(text: &str) -> Event {
        Event::AgentError(AgentErrorEvent {
            meta: EventMeta::new(Source::Agent),
            tool_name: "terminal".into(),
            tool_call_id: "x".into(),
            error: text.into(),
            classification: None,
            extra: Map::new(),
        })
    }

    fn observation(text: &str) -> Event {
        Event::Observation(ObservationEvent {
            meta: EventMeta::new(Source::Environment),
            tool_name: "terminal".into(),
            tool_call_id: crate::util::id::uuid4(),
            observation: Observation::Think(TextObservation {
                content: vec![Content::Text(TextContent::new(text))],
                is_error: false,
                extra: Map::new(),
            }),
            action_id: crate::util::id::uuid4(),
            extended_content: vec![],
            extra: Map::new(),
        })
    }

    fn agent_says(text: &str) -> Event {
        let Event::Message(mut m) = user(text) else {
            unreachable!()
        };
        m.meta.source = Source::Agent;
        m.llm_message.role = Role::Assistant;
        Event::Message(m)
    }

    #[test]
    fn repeating_action_and_observation() {
        let mut ev = vec![user("go")];
        for _ in 0..3 {
            ev.push(action("ls"));
            ev.push(observation("a b"));
        }
        assert_eq!(check(&ev), Verdict::Fine);
        ev.push(action("ls"));
        ev.push(observation("a b"));
        assert!(matches!(check(&ev), Verdict::Stuck(_)));
        // A new user message starts over.
        ev.push(user("again"));
        assert_eq!(check(&ev), Verdict::Fine);
    }

    #[test]
    fn repeating_errors_nudge_then_stop() {
        let mut ev = vec![user("go")];
        for _ in 0..3 {
            ev.push(action("bad"));
            ev.push(error("boom"));
        }
        assert_eq!(check(&ev), Verdict::Nudge("terminal".into(), "boom".into()));
        ev.push(action("bad"));
        ev.push(error("boom"));
        assert!(matches!(check(&ev), Verdict::Stuck(_)));
    }

    #[test]
    fn monologue_and_alternation() {
        let ev = vec![
            user("go"),
            agent_says("a"),
            agent_says("b"),
            agent_says("c"),
        ];
        assert!(matches!(check(&ev), Verdict::Stuck(_)));
        let mut ev = vec![user("go")];
        for i in 0..6 {
            let (a, o) = if i % 2 == 0 {
                ("ls", "x")
            } else {
                ("pwd", "y")
            };
            ev.push(action(a));
            ev.push(observation(o));
        }
        assert!(matches!(check(&ev), Verdict::Stuck(_)));
    }
}
