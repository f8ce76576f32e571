"""The scoring chain: complexity, then hurdle, rating, users_rated and geek rating."""
