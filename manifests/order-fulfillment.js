'use strict';

// on_event(state, event, ctx) -> { state, commands, schedules, cancel, done }
// state is null for a new instance. Everything here must be deterministic: no clock but ctx.now.

const PAYMENT_DEADLINE_MS = 10 * 60 * 1000;

function on_event(state, event, ctx) {
  if (event.type === 'order.created') {
    if (state !== null) {
      return { state: state };          // a re-sent created event changes nothing
    }
    const order = event.data;
    return {
      state: { status: 'awaiting_payment', order_id: order.order_id, amount: order.amount, created_at: ctx.now },
      commands: [{ effect: 'payment.charge', id: ctx.id('charge'), payload: { order_id: order.order_id, amount: order.amount } }],
      schedules: [{ name: 'payment-deadline', after_ms: PAYMENT_DEADLINE_MS }],
    };
  }
  if (state === null) {
    return { state: null };             // a result for an order we never saw: keep waiting for it
  }
  if (event.type === 'payment.charge.succeeded') {
    return {
      state: Object.assign({}, state, { status: 'shipping', payment_ref: event.data.result.reference }),
      commands: [{ effect: 'shipment.create', id: ctx.id('ship'), payload: { order_id: state.order_id } }],
      cancel: ['payment-deadline'],
    };
  }
  if (event.type === 'shipment.create.succeeded') {
    return { state: Object.assign({}, state, { status: 'completed', completed_at: ctx.now }), done: true };
  }
  if (event.type === 'timer.fired' && state.status === 'awaiting_payment') {
    return { state: Object.assign({}, state, { status: 'cancelled', reason: 'payment deadline passed' }), done: true };
  }
  return { state: state };
}

// Called instead of on_event for failed effect results (workflow.evt.{tenant}.{effect}.failed).
function compensate(state, event, ctx) {
  if (state === null) {
    return { state: null };
  }
  return {
    state: Object.assign({}, state, { status: 'cancelled', reason: event.data.error ? event.data.error.code : 'effect failed' }),
    commands: [{ effect: 'order.cancel', id: ctx.id('cancel'), payload: { order_id: state.order_id, reason: 'payment failed' } }],
    cancel: ['payment-deadline'],
    done: true,
  };
}
