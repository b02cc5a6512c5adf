"""Front-ends: the milter server (and later the SMTP proxy) that feed the engine and apply its plan."""
