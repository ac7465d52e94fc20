// The public header compiles alone as C++, and links.
#include <mmn/mmn.h>

#include <cstring>

struct holder {
	int payload;
	struct mmn_itree_node node;
};

int main()
{
	struct mmn_itree tree = MMN_ITREE_INIT;
	holder h{};
	h.node.start = 1;
	h.node.last = 2;
	mmn_itree_insert(&tree, &h.node);
	mmn_itree_node *n = mmn_itree_iter_first(&tree, 0, 10);
	if (n == nullptr || mmn_container_of(n, holder, node) != &h)
		return 1;
	mmn_itree_remove(&tree, &h.node);
	if (!mmn_itree_empty(&tree))
		return 1;
	return std::strcmp(mmn_version(), MMN_VERSION_STRING) == 0 ? 0 : 1;
}
