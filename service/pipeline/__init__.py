"""The request pipeline: a task's route run through admission, the answer cache and
coalescing, the breakers, fan-out and fallback, with each target's liveness."""
