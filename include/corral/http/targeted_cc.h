/*
 * targeted_cc.h: targeted Cache-Control fields (RFC 9213), such as CDN-Cache-Control: which response fields are
 * targeted at corral (cache.targeted_cache_control), whether a value is a valid Structured Fields Dictionary
 * (RFC 8941 3.2), and whether a field is kept from clients (cache.forward_targeted). Pure functions, no state.
 *
 * How they apply (http.c, cr_response_info_add / cr_response_info_apply_targeted): the first field of the list
 * that is present with a valid, non-empty value replaces Cache-Control, Expires and Pragma for corral's own
 * decisions; a field with any invalid line is ignored as a whole (RFC 9213 2.1). The field is stored with the object
 * (a 304's refresh needs it) and removed from what clients get unless cache.forward_targeted is set.
 */
#ifndef CORRAL_HTTP_TARGETED_CC_H
#define CORRAL_HTTP_TARGETED_CC_H

#include "corral/core/common.h"
#include "corral/conf/config.h"

/* The index (0 = highest precedence) of lname (lower-case) in the configured list, or -1. */
int cr_targeted_cc_index(const cr_config_t *cfg, cr_str_t lname);

/* Is lname a targeted field that clients must not get (listed, and cache.forward_targeted off)? cfg may be NULL. */
static inline int cr_targeted_cc_hidden(const cr_config_t *cfg, cr_str_t lname)
{
    return cfg != NULL && cfg->cache.num_targeted_cc != 0 && !cfg->cache.forward_targeted &&
           cr_targeted_cc_index(cfg, lname) >= 0;
}

/* Is v a valid, non-empty RFC 8941 Dictionary (members key[=bare-item] with parameters, separated by OWS "," OWS)?
 * Returns 1 or 0; never reads past v.len. */
int cr_sf_dictionary_valid(cr_str_t v);

#endif
