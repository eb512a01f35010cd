"""The API server: assembles the components' kinds and routers (``app``) and runs them
(``run``). It holds no domain logic of a component."""
