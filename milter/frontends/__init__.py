"""Front-ends (milter server, later the SMTP proxy): feed the engine, apply its plan."""
