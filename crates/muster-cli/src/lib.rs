//! muster client verbs over swarming.v2
