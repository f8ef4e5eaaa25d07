package cache

func expCompact(c *Cache) {
	for _, in := range c.insts {
		in.v4[0].p.Store(in.v4[0].p.Load().Clone())
		in.v6.p.Store(in.v6.p.Load().Clone())
	}
}
