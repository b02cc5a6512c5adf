"""The SMTP filter front-end: aiosmtpd receives, the service decides, aiosmtplib relays."""
