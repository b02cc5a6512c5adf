"""Front-ends (milter server, SMTP filter) over one service: feed the engine, apply its plan."""
