'use strict';

// on_event(state, event, ctx) -> { state, commands, schedules, cancel, done }
// state is null for a new instance. Everything here must be deterministic: no clock but ctx.now.
// Effect results (workflow.evt.{tenant}.{effect}.{outcome}) and timers come back to this saga
// without a trigger of their own: Runner routes them by the correlation they carry.

const DEFAULT_PAYMENT_DEADLINE_MS = 10 * 60 * 1000;

function on_event(state, event, ctx) {
  if (event.type === 'order.created') {
    if (state !== null) {
      return { state: state };          // a re-sent created event changes nothing
    }
    const order = event.data;
    return {
      state: { status: 'reserving', order_id: order.order_id, amount: order.amount, created_at: ctx.now },
      commands: [{ effect: 'inventory.reserve', id: ctx.id('reserve'), payload: { order_id: order.order_id, items: order.items || [] } }],
      schedules: [{ name: 'payment-deadline', after_ms: order.payment_deadline_ms || DEFAULT_PAYMENT_DEADLINE_MS, deadline: true }],
    };
  }
  if (state === null) {
    return { state: null };             // a result for an order we never saw: keep waiting for it
  }
  if (event.type === 'inventory.reserve.succeeded' && state.status === 'cancelling') {
    // The deadline passed while the reservation was in flight: release it now that it exists.
    return {
      state: Object.assign({}, state, { status: 'cancelled' }),
      commands: [{ effect: 'inventory.release', id: ctx.id('release'), payload: { order_id: state.order_id, reservation_id: event.data.result.reservation_id } }],
      done: true,
    };
  }
  if (event.type === 'inventory.reserve.succeeded' && state.status === 'reserving') {
    return {
      state: Object.assign({}, state, { status: 'charging', reservation_id: event.data.result.reservation_id }),
      commands: [{ effect: 'payment.charge', id: ctx.id('charge'), payload: { order_id: state.order_id, amount: state.amount } }],
    };
  }
  if (event.type === 'payment.charge.succeeded') {
    if (state.status === 'cancelling') {
      // The deadline passed while the charge was in flight, and it went through after all: refund it.
      return {
        state: Object.assign({}, state, { status: 'cancelled', payment_ref: event.data.result.reference }),
        commands: [{ effect: 'payment.refund', id: ctx.id('refund'), payload: { order_id: state.order_id, reference: event.data.result.reference } }],
        done: true,
      };
    }
    return {
      state: Object.assign({}, state, { status: 'shipping', payment_ref: event.data.result.reference, charge_attempts: event.data.attempts }),
      commands: [{ effect: 'shipment.create', id: ctx.id('ship'), payload: { order_id: state.order_id } }],
      cancel: ['payment-deadline'],
    };
  }
  if (event.type === 'shipment.create.succeeded') {
    return { state: Object.assign({}, state, { status: 'completed', tracking: event.data.result.tracking, completed_at: ctx.now }), done: true };
  }
  return { state: state };
}

// Called instead of on_event when an effect fails permanently (a failed result) or a timer set
// with deadline: true fires. It undoes what was done so far.
function compensate(state, event, ctx) {
  if (state === null) {
    return { state: null };
  }
  if (state.status === 'cancelling') {
    // What was in flight at the deadline failed: nothing left to undo.
    return { state: Object.assign({}, state, { status: 'cancelled' }), done: true };
  }
  const deadline = event.type === 'timer.fired';
  const reason = deadline ? 'payment deadline passed' : event.data.effect + ': ' + event.data.error.code;
  const undo = [];
  if (state.reservation_id) {
    undo.push({ effect: 'inventory.release', id: ctx.id('release'), payload: { order_id: state.order_id, reservation_id: state.reservation_id } });
  }
  if (state.payment_ref) {
    undo.push({ effect: 'payment.refund', id: ctx.id('refund'), payload: { order_id: state.order_id, reference: state.payment_ref } });
  }
  undo.push({ effect: 'order.cancel', id: ctx.id('cancel'), payload: { order_id: state.order_id, reason: reason } });
  if (deadline && (state.status === 'reserving' || state.status === 'charging')) {
    // A reservation or charge is still in flight: stay open for its result, to undo it if it goes through.
    return { state: Object.assign({}, state, { status: 'cancelling', reason: reason }), commands: undo };
  }
  return { state: Object.assign({}, state, { status: 'cancelled', reason: reason }), commands: undo, cancel: ['payment-deadline'], done: true };
}
