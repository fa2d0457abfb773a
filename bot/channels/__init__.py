"""Chat channels: every way a message reaches the bot, behind one protocol."""
