# Hooks for the build*-linux bots (a test fixture written for muster).
def get_dimensions(bot):
  return {"os": ["Linux"]}
