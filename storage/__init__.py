"""odradek.storage"""
