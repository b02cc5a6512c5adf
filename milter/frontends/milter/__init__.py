"""The milter front-end: Postfix/Sendmail speak the milter protocol to Tocsin."""
