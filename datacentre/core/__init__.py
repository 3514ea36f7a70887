"""What every other package stands on: ticks and the clock, instruments and expiries, pricing,
configuration and the one exception tree. Nothing here does I/O."""
