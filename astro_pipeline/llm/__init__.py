"""Policy backends behind one generation protocol (see ``protocol``)."""
