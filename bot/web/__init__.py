"""The bot's own web server: simulator page, health, staff dashboard and API."""
